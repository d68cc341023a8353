# Central's intake fuzz target, replayed on its corpus by ctest in every run.
elasticdns_fuzz_target(central_intake TEST fuzz.central_intake
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/central_intake_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/central_intake
  LIBS elasticdns_central)
# To grow the corpus: configure with CC=clang CXX=clang++ -DELASTICDNS_FUZZ=ON
# -DELASTICDNS_SANITIZE=ON, build central_intake_fuzz, run it on a copy of the corpus, then merge.
