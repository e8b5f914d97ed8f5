// The popular repositories' layouts end to end: `info` describes them (format,
// classes, splits, normals), `pack` and `train` take them as any folder.
#include <nlohmann/json.hpp>

#include "../layout_fixtures.h"
#include "cli_helpers.h"

namespace pointnet::e2e {
namespace {

using Args = std::vector<std::string>;

class CliLayouts : public CliFixture {
 protected:
  nlohmann::json info(const Args& extra) {
    Args a = {"info"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--json");
    return nlohmann::json::parse(ok(a).out);
  }
};

TEST_F(CliLayouts, InfoDescribesModelNetNormalResampledAndItsPack) {
  testing::write_modelnet_normal(p("mn"));
  const auto j = info({p("mn")});
  EXPECT_EQ(j["format"], "txt");
  EXPECT_EQ(j["layout"], "modelnet");
  EXPECT_EQ(j["normals"], true);
  ASSERT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][1]["name"], "night_stand");
  EXPECT_EQ(j["classes"][0]["train"], 2);
  EXPECT_EQ(j["splits"], (nlohmann::json{{"train", 4}, {"test", 1}}));
  EXPECT_EQ(j["points_per_shape"]["max"], 5);
  ASSERT_EQ(j["problems"].size(), 2u) << j.dump();  // the fixture's test split has night_stand only
  EXPECT_NE(j["problems"][0].get<std::string>().find("airplane"), std::string::npos);

  const auto ten = info({p("mn"), "--modelnet10"});
  EXPECT_EQ(ten["classes"].size(), 2u);
  EXPECT_EQ(ten["splits"]["train"], 2);

  const RunResult packed = ok({"pack", p("mn"), "--out", p("mn.pack")});
  EXPECT_NE(packed.out.find("with normals"), std::string::npos) << packed.out;
  const auto pj = info({p("mn.pack")});
  EXPECT_EQ(pj["format"], "pack");
  EXPECT_EQ(pj["source_format"], "txt");
  EXPECT_EQ(pj["normals"], true);
  EXPECT_EQ(pj["splits"], j["splits"]);

  const RunResult text = ok({"info", p("mn")});
  EXPECT_NE(text.out.find("format txt"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("normals yes"), std::string::npos) << text.out;
}

TEST_F(CliLayouts, TrainsOnModelNetNormalResampled) {
  testing::write_modelnet_normal(p("mn"));
  ok({"train", "--data", p("mn"), "--out", p("run"), "--plain", "--points", "16", "--batch-size", "2", "--epochs", "1"});
  EXPECT_TRUE(fs::exists(p("run/model.safetensors")));
}

// --use-normals: a 6-channel model trains on data with normals, its checkpoint
// says so, eval and predict feed it normals, and data without them is refused
// by name. --sampling fps rides along (each shape keeps its 16 farthest points).
TEST_F(CliLayouts, TrainsEvaluatesAndPredictsWithNormals) {
  testing::write_modelnet_normal(p("mn"), 40);
  ok({"train", "--data", p("mn"), "--out", p("run"), "--plain", "--points", "16", "--batch-size", "2", "--epochs", "1",
      "--use-normals", "--sampling", "fps"});
  const nlohmann::json evaluation =
      nlohmann::json::parse(ok({"eval", "--model", p("run/model.safetensors"), "--data", p("mn"), "--json"}).out);
  EXPECT_EQ(evaluation["points"], 16);
  const RunResult predicted =
      ok({"predict", "--model", p("run/model.safetensors"), "--input", p("mn/sofa/sofa_0001.txt"), "--json"});
  EXPECT_EQ(nlohmann::json::parse(predicted.out)["log_probs"].size(), 3u);

  // xyz-only input to the normals model: refused, naming the file.
  testing::write_text_file(p("plain.xyz"), "0 0 0\n1 0 0\n0 1 0\n0 0 1\n");
  const RunResult refused = fails({"predict", "--model", p("run/model.safetensors"), "--input", p("plain.xyz")});
  EXPECT_NE(refused.err.find("plain.xyz"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("normals"), std::string::npos) << refused.err;
}

TEST_F(CliLayouts, UseNormalsNeedsDataWithNormals) {
  for (const char* cls : {"a", "b"})
    for (const char* split : {"train", "test"})
      for (int i = 0; i < 2; ++i)
        testing::write_text_file(p(std::string("xyz/") + cls + "/" + split + "/" + cls + std::to_string(i) + ".xyz"),
                                 "0 0 0\n1 0 0\n0 1 " + std::to_string(i) + "\n");
  const RunResult refused = fails({"train", "--data", p("xyz"), "--out", p("run"), "--plain", "--epochs", "1",
                                   "--batch-size", "2", "--use-normals"});
  EXPECT_NE(refused.err.find("has no normals"), std::string::npos) << refused.err;
}

TEST_F(CliLayouts, InfoDescribesShapeNetNormalAndHdf5) {
  testing::write_shapenet_part(p("sn"), true);
  const auto sn = info({p("sn")});
  EXPECT_EQ(sn["format"], "txt");
  EXPECT_EQ(sn["layout"], "shapenet_part");
  EXPECT_EQ(sn["normals"], true);
  EXPECT_EQ(sn["splits"], (nlohmann::json{{"train", 2}, {"val", 1}, {"test", 1}}));
#ifdef POINTNET_HAS_HDF5
  testing::write_modelnet_hdf5(p("h5"), false);
  const auto h5 = info({p("h5")});
  EXPECT_EQ(h5["format"], "hdf5");
  EXPECT_EQ(h5["normals"], false);
  EXPECT_EQ(h5["splits"], (nlohmann::json{{"train", 3}, {"test", 1}}));
  testing::write_shapenet_part_hdf5(p("snh5"));
  const auto snh5 = info({p("snh5")});
  EXPECT_EQ(snh5["format"], "hdf5");
  EXPECT_EQ(snh5["layout"], "shapenet_part");
  EXPECT_EQ(snh5["splits"], sn["splits"]);
#endif
}

}  // namespace
}  // namespace pointnet::e2e
