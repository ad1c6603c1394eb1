// .npz files as NumPy writes them (numpy.savez, numpy.savez_compressed),
// made by Debian's python3-numpy through /usr/bin/python3, read back.

#include "worker/core/npz.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;

class NpzTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = ::mixcal::testing::FreshTestDir("npz"); }
  void TearDown() override { fs::remove_all(dir_); }
  // Runs `code` in NumPy with `path` bound to where the file goes.
  std::string Make(const std::string& name, const std::string& code) {
    const std::string path = (dir_ / name).string();
    const std::string script = (dir_ / "make.py").string();
    std::ofstream(script) << "import numpy as np\npath = '" << path << "'\n"
                          << code << "\n";
    EXPECT_EQ(std::system(("/usr/bin/python3 " + script).c_str()), 0) << code;
    return path;
  }
  fs::path dir_;
};

TEST_F(NpzTest, ReadsStoredAndCompressedArraysOfEveryDtype) {
  for (const char* save : {"np.savez", "np.savez_compressed"}) {
    const std::string path = Make("a.npz", absl::StrCat(save, R"((path,
    x_train=np.arange(2*3*4, dtype=np.uint8).reshape(2, 3, 4),
    y_train=np.array([0, 1], dtype=np.int64),
    x_test=np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
    tokens=np.array([[5, 6, 7]], dtype=np.int32),
    half=np.array([0.5, -2], dtype=np.float16),
    scalar=np.float64(3.25)))"));
    absl::StatusOr<NpzFile> npz = NpzFile::Open(path);
    ASSERT_TRUE(npz.ok()) << npz.status();
    EXPECT_EQ(npz->Names().size(), 6u);
    auto x = npz->Read("x_train");
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->dtype, "uint8");
    EXPECT_EQ(x->shape, (std::vector<int64_t>{2, 3, 4}));
    for (int i = 0; i < 24; ++i)
      EXPECT_EQ(static_cast<uint8_t>(x->data()[i]), i);
    auto y = npz->Read("y_train");
    ASSERT_TRUE(y.ok());
    EXPECT_EQ(y->dtype, "int64");
    int64_t labels[2];
    std::memcpy(labels, y->data(), sizeof labels);
    EXPECT_EQ(labels[1], 1);
    auto t = npz->Read("x_test");
    ASSERT_TRUE(t.ok());
    float values[6];
    std::memcpy(values, t->data(), sizeof values);
    EXPECT_FLOAT_EQ(values[5], 1.0f);
    EXPECT_FLOAT_EQ(values[1], 0.2f);
    EXPECT_EQ(npz->Read("tokens")->dtype, "int32");
    EXPECT_EQ(npz->Read("half")->item_size, 2u);
    auto s = npz->Read("scalar");
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->shape.empty());
    double d;
    std::memcpy(&d, s->data(), sizeof d);
    EXPECT_EQ(d, 3.25) << save;
    // An array the file lacks: NotFound listing those it has.
    auto missing = npz->Read("x_val");
    EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(missing.status().message().find("x_train, y_train"),
              std::string::npos)
        << missing.status();
  }
}

TEST_F(NpzTest, RefusesWhatItCannotReadNamingTheArray) {
  const std::string path = Make("b.npz", R"(np.savez(path,
    fortran=np.asfortranarray(np.ones((3, 2), dtype=np.float32)),
    big=np.ones(3, dtype='>f4'),
    objects=np.array([{'a': 1}], dtype=object),
    strings=np.array(['cat', 'dog'])))");
  absl::StatusOr<NpzFile> npz = NpzFile::Open(path);
  ASSERT_TRUE(npz.ok()) << npz.status();
  for (const char* name : {"fortran", "big", "objects", "strings"}) {
    auto a = npz->Read(name);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(a.status().message().find(absl::StrCat("array ", name)),
              std::string::npos)
        << a.status();
  }
  EXPECT_NE(npz->Read("fortran").status().message().find("Fortran order"),
            std::string::npos);
  // Not an archive at all; an archive cut short.
  const std::string text = (dir_ / "text.npz").string();
  std::ofstream(text) << "x_train,y_train\n1,2\n";
  EXPECT_EQ(NpzFile::Open(text).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string cut = (dir_ / "cut.npz").string();
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(path) / 2);
  EXPECT_FALSE(NpzFile::Open(cut).ok());
  EXPECT_EQ(NpzFile::Open((dir_ / "absent.npz").string()).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mixcal::core
