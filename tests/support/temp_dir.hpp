// A scratch directory under /tmp removed (recursively) when the test ends.
#pragma once

#include <string>

namespace hubgate::test {

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const noexcept { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    // Writes `content` to path()/name and returns the full path.
    std::string write(const std::string& name, const std::string& content) const;
    // The bytes of path()/name ("" when it does not exist).
    std::string read(const std::string& name) const;

private:
    std::string path_;
};

}  // namespace hubgate::test
