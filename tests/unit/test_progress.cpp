// Progress output (plain and in-place modes) and duration formatting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "train/progress.h"

using namespace pointnet;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST(ProgressFormat, Durations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(12), "12s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3599), "59m59s");
  EXPECT_EQ(format_duration(3600), "1h00m");
  EXPECT_EQ(format_duration(2 * 3600 + 3 * 60 + 59), "2h03m");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(NAN), "?");
  EXPECT_EQ(format_duration(INFINITY), "?");
}

TEST(Progress, PlainLinesEveryTenthPlusFinal) {
  std::ostringstream out;
  Progress p("train", 100, out);
  p.force_plain(true);
  for (int i = 1; i <= 100; ++i) p.update(i, "loss 0.512");
  p.finish("acc 83.1%");
  std::vector<std::string> lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 11u) << out.str();
  EXPECT_EQ(lines[0].rfind("train: 10/100 (10%) loss 0.512 | ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("ETA"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[9].rfind("train: 100/100 (100%) loss 0.512 | ", 0), 0u) << lines[9];
  EXPECT_EQ(lines[10].rfind("train: done 100/100 in ", 0), 0u) << lines[10];
  EXPECT_EQ(lines[10].substr(lines[10].size() - 11), ", acc 83.1%") << lines[10];
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(Progress, PlainSmallTotalAndUnknownTotal) {
  std::ostringstream small;
  Progress a("eval", 3, small);
  for (int i = 1; i <= 3; ++i) a.update(i, "");
  a.finish("");
  EXPECT_EQ(lines_of(small.str()).size(), 4u) << small.str();
  EXPECT_EQ(lines_of(small.str()).back().rfind("eval: done 3/3 in ", 0), 0u);

  std::ostringstream unknown;
  Progress b("pack", 0, unknown);
  for (int i = 1; i <= 1000; ++i) b.update(i, "");
  b.finish("1000 shapes");
  std::vector<std::string> lines = lines_of(unknown.str());
  ASSERT_EQ(lines.size(), 1u) << unknown.str();  // nothing until 30 s pass, then the final line
  EXPECT_EQ(lines[0].rfind("pack: done 1000 in ", 0), 0u) << lines[0];
  b.finish("again");  // ignored
  EXPECT_EQ(lines_of(unknown.str()).size(), 1u);
}

TEST(Progress, InPlaceBarIsThrottledAndEndsWithNewline) {
  std::ostringstream out;
  Progress p("epoch 1", 1000, out);
  p.force_plain(false);
  for (int i = 1; i <= 1000; ++i) p.update(i, "loss 0.5");
  p.finish("done");
  std::string s = out.str();
  auto redraws = std::count(s.begin(), s.end(), '\r');
  EXPECT_GE(redraws, 3);    // first update, the complete one, the final line
  EXPECT_LT(redraws, 100);  // 1000 fast updates are throttled
  EXPECT_NE(s.find("epoch 1 [" + std::string(24, '#') + "] 1000/1000 (100%) loss 0.5"), std::string::npos) << s;
  EXPECT_EQ(s.back(), '\n');
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);
}
