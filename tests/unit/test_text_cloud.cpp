// Text point clouds (io/text_cloud.h): separators, line ends, column counts,
// and errors that name the line and column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../temp_dir.h"
#include "core/errors.h"
#include "io/cloud_file.h"
#include "io/text_cloud.h"

namespace pointnet {
namespace {

void expect_error(const std::string& text, std::initializer_list<std::string> details) {
  try {
    parse_text_cloud(text, "c.txt");
    FAIL() << "expected an error for: " << text;
  } catch (const Error& e) {
    for (const std::string& d : details) EXPECT_NE(std::string(e.what()).find(d), std::string::npos) << e.what();
  }
}

TEST(TextCloud, SpacesTabsCommasAndCrlfReadTheSame) {
  const std::vector<float> want{1, 2, 3, -4.5f, 0.25f, 6e-3f};
  for (const std::string& text :
       {std::string("1 2 3\n-4.5 0.25 6e-3\n"), std::string("1\t2\t3\n-4.5\t 0.25\t6e-3"),
        std::string("1,2,3\r\n-4.5, 0.25 ,+6e-3\r\n"), std::string("\n  1 2 3  \r\n\n-4.5 0.25 6e-3\n\n\r\n  \n")}) {
    const Cloud c = parse_text_cloud(text, "c.txt");
    EXPECT_EQ(c.xyz, want) << text;
    EXPECT_TRUE(c.normals.empty());
    EXPECT_TRUE(c.labels.empty());
  }
}

TEST(TextCloud, SixColumnsAreNormalsSevenAddALabel) {
  const Cloud six = parse_text_cloud("0,0,1,0,0,1\n1,0,0,1,0,0\n", "c.txt");
  EXPECT_EQ(six.xyz, (std::vector<float>{0, 0, 1, 1, 0, 0}));
  EXPECT_EQ(six.normals, (std::vector<float>{0, 0, 1, 1, 0, 0}));
  EXPECT_TRUE(six.labels.empty());
  const Cloud seven = parse_text_cloud("0 0 1 0 0 1 12.000000\n1 0 0 1 0 0 3\n", "c.txt");
  EXPECT_EQ(seven.normals.size(), 6u);
  EXPECT_EQ(seven.labels, (std::vector<int32_t>{12, 3}));
}

TEST(TextCloud, BadRowsNameTheLineAndColumn) {
  expect_error("1 2 3\n4 5\n", {"c.txt: line 2", "2 columns", "line 1 has 3"});
  expect_error("1 2 3 4\n", {"c.txt: line 1", "4 columns", "expected 3"});
  expect_error("1 2 3\n\n4 5 x\n", {"c.txt: line 3, column 3", "expected a number", "'x'"});
  expect_error("1 2 3\n4 5 6q\n", {"line 2, column 3", "'6q'"});
  expect_error("1 2 nan\n", {"line 1, column 3", "finite"});
  expect_error("1 2 1e39\n", {"line 1, column 3", "within float range", "'1e39'"});  // overflows float
  // Binary garbage is escaped and cut short, so the message stays one readable line.
  expect_error(std::string("1 2 \x01\xff") + std::string(60, 'z') + "\n",
               {"line 1, column 3", "found '\\x01\\xff" + std::string(38, 'z') + "'..."});
  expect_error("1,,3\n", {"line 1, column 2", "empty"});
  expect_error("1,2,3,\n", {"line 1", "trailing comma"});
  expect_error("0 0 0 0 0 1 2.5\n", {"line 1, column 7", "whole"});
  expect_error("0 0 0 0 0 1 -1\n", {"line 1, column 7"});
}

TEST(TextCloud, ReadCloudReturnsNormalsAndLabelsOfTextFiles) {
  testing::TempDir tmp;
  const std::string path = (tmp / "a.xyz").string();
  std::ofstream(path) << "0 0 0 0 1 0 4\n1 1 1 0 0 1 5\n";
  const Cloud c = read_cloud(path, CloudReadOptions{});
  EXPECT_EQ(c.num_points(), 2);
  EXPECT_EQ(c.normals, (std::vector<float>{0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(c.labels, (std::vector<int32_t>{4, 5}));
  std::ofstream((tmp / "empty.txt").string()) << "\n\n";
  EXPECT_THROW(read_cloud((tmp / "empty.txt").string(), CloudReadOptions{}), Error);
}

}  // namespace
}  // namespace pointnet
