// The torchrun environment of a data-parallel job: which process this is and
// where the ranks meet. docs/distributed.md describes the launch.
#pragma once

#include <functional>
#include <string>

namespace openrm {

struct DistributedEnv {
  int rank = 0;              // RANK: this process, in [0, world_size)
  int world_size = 1;        // WORLD_SIZE: processes in the job
  int local_rank = 0;        // LOCAL_RANK: this process on its machine (picks cuda:LOCAL_RANK)
  int local_world_size = 1;  // LOCAL_WORLD_SIZE: processes on this machine (shares its CPU threads)
  std::string master_addr;   // MASTER_ADDR: the host of rank 0, which serves the rendezvous store
  int master_port = 0;       // MASTER_PORT
  // Where rank 0 serves openrm's rendezvous store: MASTER_PORT, or
  // MASTER_PORT + 1 under torchrun, whose agent already serves its own store
  // on MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True; its wire format
  // changes between LibTorch versions, so openrm does not share it);
  // OPENRM_STORE_PORT overrides both.
  int store_port = 0;
  bool distributed() const { return world_size > 1; }
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT through `lookup` (std::getenv when empty). No WORLD_SIZE, or
// WORLD_SIZE=1: one process, the rest ignored. Otherwise RANK, MASTER_ADDR
// and MASTER_PORT are required; LOCAL_RANK defaults to RANK and
// LOCAL_WORLD_SIZE to WORLD_SIZE (one machine). Throws openrm::Error naming
// the variable on a missing, malformed or inconsistent value.
DistributedEnv read_distributed_env(const std::function<const char*(const char*)>& lookup = {});

}  // namespace openrm
