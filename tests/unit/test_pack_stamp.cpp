// Verification stamps (data/pack_stamp.h): an unchanged pack verified once is
// trusted on later loads; any change to it, a stamp for other bytes, or
// POINTNET_PACK_VERIFY=always brings the full verification back.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../scoped_env.h"
#include "core/atomic_file.h"
#include "core/mapped_file.h"
#include "data/pack_format.h"
#include "data/pack_stamp.h"
#include "format_test_helpers.h"
#include "pack_fixtures.h"

namespace pointnet {
namespace {

class PackStamp : public PackTest {
 protected:
  testing::ScopedEnv env_;
  void SetUp() override {
    env_.set("POINTNET_CACHE_DIR", path("cache").c_str());
    env_.set("POINTNET_PACK_VERIFY", "stamp");
  }
  // A pack whose last change is old enough to be stamped (write_stamp skips changes under 2 s old).
  std::string settled_pack() {
    write_pack(synth("cls"), path("s.pack"), {});
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    return path("s.pack");
  }
  static std::string stamp_of(const std::string& pack) { return pack::stamp_path(MappedFile(pack)); }
  static uint64_t stored_checksum(const std::string& pack) {
    MappedFile f(pack);
    return pack::get_le(f.data() + pack::kChecksumAt, 8);
  }
  // Flips one coordinate byte in place: same inode and size, new mtime and ctime.
  static void flip_byte_in_place(const std::string& pack, size_t at) {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    const char c = static_cast<char>(f.get() ^ 0x01);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(c);
  }
};

TEST_F(PackStamp, AVerifiedPackIsStampedAndAChangedOneVerifiedAgain) {
  const std::string pack = settled_pack();
  const std::string stamp = stamp_of(pack);
  ASSERT_FALSE(stamp.empty());
  EXPECT_EQ(stamp.rfind(path("cache") + "/verified-packs/", 0), 0u) << stamp;
  EXPECT_FALSE(std::filesystem::exists(stamp));
  const Dataset first = load_dataset(pack, {});
  ASSERT_TRUE(std::filesystem::exists(stamp));
  EXPECT_TRUE(pack::stamp_says_verified(MappedFile(pack), stored_checksum(pack)));
  EXPECT_FALSE(pack::stamp_says_verified(MappedFile(pack), stored_checksum(pack) ^ 1));  // other bytes
  const Dataset again = load_dataset(pack, {});  // trusted: same shapes
  expect_same(first, again);
  // A byte changed in place: the identity no longer matches, the checksum catches it.
  const size_t size = std::filesystem::file_size(pack);
  flip_byte_in_place(pack, size - 5);
  EXPECT_FALSE(pack::stamp_says_verified(MappedFile(pack), stored_checksum(pack)));
  testing::expect_error([&] { load_dataset(pack, {}); }, {"s.pack: checksum mismatch"});
}

TEST_F(PackStamp, AStampIsTrustedOnlyForTheIdentityItNames) {
  const std::string pack = settled_pack();
  flip_byte_in_place(pack, std::filesystem::file_size(pack) - 5);  // damaged, then stamped as if verified
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  pack::write_stamp(MappedFile(pack), stored_checksum(pack));
  ASSERT_TRUE(std::filesystem::exists(stamp_of(pack)));
  // The stamp is what decides: the damaged pack loads (so a trusted load really skips the pass)...
  EXPECT_NO_THROW(load_dataset(pack, {}));
  // ...and POINTNET_PACK_VERIFY=always verifies regardless of any stamp.
  {
    testing::ScopedEnv always;
    always.set("POINTNET_PACK_VERIFY", "always");
    EXPECT_TRUE(pack::stamp_path(MappedFile(pack)).empty());
    testing::expect_error([&] { load_dataset(pack, {}); }, {"s.pack: checksum mismatch"});
  }
  // A stamp with any other content is ignored.
  write_file_atomic(stamp_of(pack), "pointnet-pack-verified-1 0 0 0 0 0 0\n");
  testing::expect_error([&] { load_dataset(pack, {}); }, {"s.pack: checksum mismatch"});
}

TEST_F(PackStamp, APackChangedMomentsAgoIsNotStamped) {
  write_pack(synth("cls"), path("new.pack"), {});
  load_dataset(path("new.pack"), {});
  EXPECT_FALSE(std::filesystem::exists(stamp_of(path("new.pack"))));
}

TEST_F(PackStamp, AnUnwritableCacheFolderOnlyMeansVerifyingEveryTime) {
  const std::string pack = settled_pack();
  std::ofstream(path("cache")) << "a file where the cache folder should be";
  EXPECT_NO_THROW(load_dataset(pack, {}));
  EXPECT_NO_THROW(load_dataset(pack, {}));
  EXPECT_FALSE(std::filesystem::exists(stamp_of(pack)));
}

TEST_F(PackStamp, AMistypedSwitchIsAnError) {
  write_pack(synth("cls"), path("s.pack"), {});
  const std::string pack = path("s.pack");
  testing::ScopedEnv typo;
  typo.set("POINTNET_PACK_VERIFY", "sometimes");
  testing::expect_error([&] { load_dataset(pack, {}); }, {"POINTNET_PACK_VERIFY='sometimes'", "always"});
}

}  // namespace
}  // namespace pointnet
