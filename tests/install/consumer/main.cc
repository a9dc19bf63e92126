// A program outside the Broom tree, built against the installed package.
#include <broom/broom.h>

#include <cstdio>

int main() {
  auto m = broom::Message<std::pmr::vector<int>>::Create();
  for (int i = 0; i < 100; ++i) m->push_back(i);
  bool ok = broom::RegionOf(m->data()) == &m.region().region();
  std::printf("consumer ok=%d size=%zu\n", ok ? 1 : 0, m->size());
  return ok ? 0 : 1;
}
