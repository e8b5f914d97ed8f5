// Verification stamps (data/pack_stamp.h): an unchanged pack verified once is
// trusted on later loads; any change to it, a stamp for other bytes, an
// unsafe stamp or folder, or POINTNET_PACK_VERIFY=always brings the full
// verification back.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../scoped_env.h"
#include "../temp_dir.h"
#include "core/mapped_file.h"
#include "data/pack.h"
#include "data/pack_format.h"
#include "data/pack_stamp.h"
#include "data/synth.h"
#include "format_test_helpers.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

// Packs written once per test process; the tests that need a load to stamp
// one wait, once, until 2 s have passed since (write_stamp declines to stamp
// a file changed more recently than that).
class PackStamp : public ::testing::Test {
 protected:
  static constexpr int kPacks = 8;
  static inline fs::path packs_;
  static inline std::chrono::steady_clock::time_point written_;
  static void SetUpTestSuite() {
    packs_ = fs::temp_directory_path() / ("pointnet_stamp_packs_" + std::to_string(::getpid()));
    fs::create_directories(packs_);
    SynthOptions o;
    o.points = 50;
    o.train_per_class = 3;
    o.test_per_class = 2;
    write_synthetic_classification((packs_ / "cls").string(), o);
    for (int i = 0; i < kPacks; ++i) write_pack((packs_ / "cls").string(), pack_path(i), {});
    written_ = std::chrono::steady_clock::now();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(packs_, ec);
  }
  static std::string pack_path(int i) { return (packs_ / ("p" + std::to_string(i) + ".pack")).string(); }
  // Pack i once it is old enough for a load to stamp it.
  static std::string settled(int i) {
    std::this_thread::sleep_until(written_ + std::chrono::milliseconds(2100));
    return pack_path(i);
  }

  testing::TempDir tmp_;
  testing::ScopedEnv env_;
  void SetUp() override {
    env_.set("POINTNET_CACHE_DIR", cache().c_str());
    env_.set("POINTNET_PACK_VERIFY", "stamp");
  }
  std::string cache() const { return (tmp_.path / "cache").string(); }

  static std::string stamp_of(const std::string& pack) { return pack::stamp_path(MappedFile(pack)); }
  static uint64_t stored(const std::string& pack) { return pack::stored_checksum(MappedFile(pack)); }
  static bool trusted(const std::string& pack) { return pack::stamp_says_verified(MappedFile(pack), stored(pack)); }
  // Flips one byte near the end in place: same inode and size, new mtime and ctime.
  static void flip_byte_in_place(const std::string& pack) {
    const auto at = static_cast<std::streamoff>(fs::file_size(pack) - 5);
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get() ^ 0x01);
    f.seekp(at);
    f.put(c);
  }
  // A stamp for `pack` as it is now, as if it had been verified (it may not be).
  static void forge_stamp(const std::string& pack) {
    pack::write_stamp(MappedFile(pack), stored(pack), pack::wall_clock_ns() + 10'000'000'000);
  }
};

TEST_F(PackStamp, AVerifiedPackIsStampedAndAChangedOneVerifiedAgain) {
  const std::string pack = settled(0);
  const std::string stamp = stamp_of(pack);
  EXPECT_EQ(stamp.rfind(cache() + "/verified-packs/", 0), 0u) << stamp;
  EXPECT_FALSE(fs::exists(stamp));
  const Dataset first = load_dataset(pack, {});
  ASSERT_TRUE(fs::exists(stamp));
  EXPECT_EQ(fs::status(fs::path(stamp).parent_path()).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_TRUE(trusted(pack));
  EXPECT_FALSE(pack::stamp_says_verified(MappedFile(pack), stored(pack) ^ 1));  // other bytes
  const Dataset again = load_dataset(pack, {});  // trusted: the same shapes
  ASSERT_EQ(first.shapes.size(), again.shapes.size());
  for (size_t i = 0; i < first.shapes.size(); ++i) EXPECT_EQ(first.shapes[i].points, again.shapes[i].points);
  // A byte changed in place: the identity no longer matches, the checksum catches it.
  flip_byte_in_place(pack);
  EXPECT_FALSE(trusted(pack));
  testing::expect_error([&] { load_dataset(pack, {}); }, {"p0.pack: checksum mismatch"});
}

TEST_F(PackStamp, AStampIsTrustedOnlyForTheIdentityItNames) {
  const std::string pack = pack_path(1);
  flip_byte_in_place(pack);  // damaged, then stamped as if verified
  forge_stamp(pack);
  ASSERT_TRUE(trusted(pack));
  // The stamp decides: the damaged pack loads (so a trusted load really skips the pass)...
  EXPECT_NO_THROW(load_dataset(pack, {}));
  // ...POINTNET_PACK_VERIFY=always verifies regardless of any stamp...
  {
    testing::ScopedEnv always;
    always.set("POINTNET_PACK_VERIFY", "always");
    EXPECT_TRUE(pack::stamp_path(MappedFile(pack)).empty());
    testing::expect_error([&] { load_dataset(pack, {}); }, {"p1.pack: checksum mismatch"});
  }
  // ...and a stamp with any other content is ignored.
  std::ofstream(stamp_of(pack), std::ios::trunc) << "pointnet-pack-verified-1 0 0 0 0 0 0\n";
  testing::expect_error([&] { load_dataset(pack, {}); }, {"p1.pack: checksum mismatch"});
}

TEST_F(PackStamp, APackReplacedByRenameIsVerifiedAgain) {
  const std::string pack = settled(2), other = settled(3);
  load_dataset(pack, {});
  ASSERT_TRUE(trusted(pack));
  flip_byte_in_place(other);
  fs::rename(other, pack);  // another inode at the stamped path
  EXPECT_FALSE(trusted(pack));
  testing::expect_error([&] { load_dataset(pack, {}); }, {"p2.pack: checksum mismatch"});
}

TEST_F(PackStamp, GarbageHugeOrSpecialStampsAreIgnoredWithoutHanging) {
  const std::string pack = pack_path(4);
  flip_byte_in_place(pack);  // so that a stamp wrongly trusted would let it load
  forge_stamp(pack);
  const std::string stamp = stamp_of(pack);
  ASSERT_TRUE(fs::exists(stamp));
  const std::string good = [&] {
    std::ifstream in(stamp);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  for (const std::string& bad : {std::string("\x01\x02garbage"), good + std::string(300, ' '), std::string()}) {
    std::ofstream(stamp, std::ios::binary | std::ios::trunc) << bad;
    EXPECT_FALSE(trusted(pack)) << bad.size() << " bytes";
  }
  fs::remove(stamp);
  ASSERT_EQ(::mkfifo(stamp.c_str(), 0600), 0);  // a FIFO would block a plain open
  EXPECT_FALSE(trusted(pack));
  testing::expect_error([&] { load_dataset(pack, {}); }, {"p4.pack: checksum mismatch"});
  fs::remove(stamp);
  // A link to a good stamp is not followed (another user could point it anywhere).
  forge_stamp(pack);
  fs::rename(stamp, stamp + ".real");
  fs::create_symlink(stamp + ".real", stamp);
  EXPECT_FALSE(trusted(pack));
  fs::remove(stamp);
  fs::rename(stamp + ".real", stamp);
  EXPECT_TRUE(trusted(pack));  // (the same stamp, not through a link)
}

TEST_F(PackStamp, AStampInAFolderOthersCanWriteIsNotTrusted) {
  const std::string pack = pack_path(5);
  flip_byte_in_place(pack);
  forge_stamp(pack);
  ASSERT_TRUE(trusted(pack));
  const fs::path folder = fs::path(stamp_of(pack)).parent_path();
  fs::permissions(folder, fs::perms::others_write, fs::perm_options::add);
  EXPECT_FALSE(trusted(pack));
  testing::expect_error([&] { load_dataset(pack, {}); }, {"p5.pack: checksum mismatch"});
  fs::permissions(folder, fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(stamp_of(pack), fs::perms::group_write, fs::perm_options::add);  // the stamp itself
  EXPECT_FALSE(trusted(pack));
}

TEST_F(PackStamp, APackChangedMomentsAgoIsNotStamped) {
  const fs::path dir = tmp_.path / "fresh";
  SynthOptions o;
  o.points = 20;
  o.train_per_class = 1;
  o.test_per_class = 1;
  write_synthetic_classification((dir / "cls").string(), o);
  const std::string pack = (dir / "new.pack").string();
  write_pack((dir / "cls").string(), pack, {});
  load_dataset(pack, {});
  EXPECT_FALSE(fs::exists(stamp_of(pack)));
  // The 2 s count up to the moment the file was stat'ed, not to the end of
  // its verification: a file stat'ed 1 s after its last change gets no stamp,
  // however long ago that was.
  const std::string old = pack_path(7);
  const MappedFile mapped(old);
  const int64_t changed = std::max(mapped.identity().mtime_ns, mapped.identity().ctime_ns);
  pack::write_stamp(mapped, stored(old), changed + 1'000'000'000);
  EXPECT_FALSE(fs::exists(stamp_of(old)));
  pack::write_stamp(mapped, stored(old), changed + 2'000'000'000);
  EXPECT_TRUE(fs::exists(stamp_of(old)));
}

TEST_F(PackStamp, AnUnwritableCacheFolderOnlyMeansVerifyingEveryTime) {
  const std::string pack = settled(6);
  std::ofstream(cache()) << "a file where the cache folder should be";
  EXPECT_NO_THROW(load_dataset(pack, {}));
  EXPECT_NO_THROW(load_dataset(pack, {}));
  EXPECT_FALSE(fs::exists(stamp_of(pack)));
}

TEST_F(PackStamp, TheCacheFolderFollowsTheEnvironment) {
  const std::string pack = pack_path(7);
  testing::ScopedEnv env;
  env.set("POINTNET_CACHE_DIR", "");
  env.set("XDG_CACHE_HOME", "/xdg");
  env.set("HOME", "/home/someone");
  EXPECT_EQ(fs::path(stamp_of(pack)).parent_path(), "/xdg/pointnet/verified-packs");
  env.set("XDG_CACHE_HOME", "relative/cache");  // not absolute: ignored, as the XDG spec says
  EXPECT_EQ(fs::path(stamp_of(pack)).parent_path(), "/home/someone/.cache/pointnet/verified-packs");
  env.set("POINTNET_CACHE_DIR", "/ours");
  EXPECT_EQ(fs::path(stamp_of(pack)).parent_path(), "/ours/verified-packs");
}

TEST_F(PackStamp, AMistypedSwitchIsAnError) {
  testing::ScopedEnv typo;
  typo.set("POINTNET_PACK_VERIFY", "sometimes");
  testing::expect_error([&] { load_dataset(pack_path(0), {}); }, {"POINTNET_PACK_VERIFY='sometimes'", "always"});
}

}  // namespace
}  // namespace pointnet
