# Fuzz target of the agent's query path; its corpus (with mutations) is replayed in every run.
elasticdns_fuzz_target(agent_query TEST fuzz.agent.query_replay MUTATE
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/agent_query_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/query_corpus
  LIBS elasticdns_agent)
