#include "agent/caller_identity.hpp"
