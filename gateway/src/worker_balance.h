#pragma once
// Which worker thread a plain HTTP connection lives on. Accepted connections are spread over the
// workers in turn; then, between two requests, a connection may move:
// - gather: once two workers together have used less than `gather_below` of a core for
//   `gather_after_ticks` ticks in a row, the higher-numbered one hands its connections to the lower
//   one. At light and medium load the gateway then runs on fewer threads that each find more events
//   per wake-up: against a constant upstream at 10k GET/s, one worker took ~50 us of CPU per request
//   and two ~60 (gateway/bench, perf stat).
// - spread: a worker whose demand has been above `spread_above` for `spread_after_ticks` ticks in a
//   row hands some of its connections to the
//   worker with the least demand when the gap between them is more than `spread_gap`, so a load that
//   outgrows one thread gets the others back. Demand is the time the thread was on a CPU or waiting
//   in the run queue for one: on a machine shared with other processes a thread with more work than
//   CPU shows as busy, where its CPU time alone might say 60%.
// After a spread no worker gathers for `gather_hold`: a load near the thresholds settles spread out
// instead of moving back and forth, and a burst of new connections that meets a quiet moment is
// spread again within a few ticks.
// Each worker reports its own load every tick and only it reads and writes its plan; the loads are
// read by all. No Asio here: the gateway server does the moving (gateway_server.cpp).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace medicus::gateway {

class WorkerBalance {
 public:
  using Clock = std::chrono::steady_clock;

  struct Thresholds {
    double gather_below = 0.5;
    unsigned gather_after_ticks = 4;
    double spread_above = 0.9;
    double spread_gap = 0.25;
    unsigned spread_after_ticks = 2;
    Clock::duration gather_hold = std::chrono::seconds(10);
  };

  // Shares of one core since the worker's last tick, 0..1.
  struct Load {
    double cpu = 0;     // on a CPU
    double demand = 0;  // on a CPU or waiting for one (>= cpu)
  };

  explicit WorkerBalance(size_t workers) : WorkerBalance(workers, Thresholds{}) {}
  WorkerBalance(size_t workers, Thresholds thresholds);

  size_t workers() const { return workers_; }

  // Worker `worker`'s tick, on its own thread: its load since its last tick and how many connections
  // it serves. Sets the worker's plan until its next tick.
  void report(size_t worker, Load load, size_t connections, Clock::time_point now);

  // On worker `worker`, between two requests of a connection that can move: the worker that should
  // serve its next request (`worker` itself to stay). A move uses up the plan's budget.
  size_t nextHome(size_t worker);

  Load load(size_t worker) const;
  uint64_t moves() const;  // connections moved, all workers

 private:
  struct alignas(64) Slot {
    std::atomic<uint32_t> cpu_permille{0};     // written by its worker, read by all
    std::atomic<uint32_t> demand_permille{0};  // written by its worker, read by all
    std::atomic<uint64_t> moves{0};            // written by its worker, summed by moves()
    size_t target = 0;                         // the plan: only its worker touches these
    size_t budget = 0;
    unsigned light_ticks = 0;  // ticks in a row it could have gathered
    unsigned heavy_ticks = 0;  // ticks in a row its demand was above spread_above
  };

  size_t workers_;
  Thresholds thresholds_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<Clock::rep> gather_held_until_{0};  // set by a spread (time_since_epoch)
};

}  // namespace medicus::gateway
