# Fuzz target of the agent's handover messages; its corpus (with mutations) is replayed in every
# run.
elasticdns_fuzz_target(agent_handover TEST fuzz.agent.handover_replay MUTATE
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/handover_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/handover_corpus
  LIBS elasticdns_agent)
