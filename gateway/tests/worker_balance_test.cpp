#include <catch2/catch.hpp>

#include "worker_balance.h"

using medicus::gateway::WorkerBalance;
using namespace std::chrono_literals;

namespace {
// How many of `connections` nextHome() sends elsewhere, and where the last one went.
struct Moved {
  size_t count = 0;
  size_t to = 0;
};
Moved drain(WorkerBalance& balance, size_t worker, size_t connections) {
  Moved moved{0, worker};
  for (size_t i = 0; i < connections; ++i) {
    size_t home = balance.nextHome(worker);
    if (home != worker) {
      ++moved.count;
      moved.to = home;
    }
  }
  return moved;
}

// A clock for the ticks: 50 ms apart, as the gateway's.
struct Ticks {
  WorkerBalance::Clock::time_point now{};
  WorkerBalance::Clock::time_point next() { return now += 50ms; }
};

WorkerBalance::Load busy(double share) { return {share, share}; }

// Ticks of both workers with these shares (worker 0 first), `ticks` times.
void tick(WorkerBalance& balance, Ticks& clock, double busy0, double busy1, size_t connections, unsigned ticks) {
  for (unsigned i = 0; i < ticks; ++i) {
    auto now = clock.next();
    balance.report(0, busy(busy0), connections, now);
    balance.report(1, busy(busy1), connections, now);
  }
}
}  // namespace

TEST_CASE("worker balance: light load gathers on the lowest worker once it lasts, in halves per tick") {
  WorkerBalance balance(2);
  Ticks clock;
  tick(balance, clock, 0.15, 0.20, 16, 3);
  CHECK(drain(balance, 1, 16).count == 0);  // three ticks: could be a quiet moment before a burst
  tick(balance, clock, 0.15, 0.20, 16, 1);
  Moved first = drain(balance, 1, 16);
  CHECK(first.count == 9);  // 16 / 2 + 1
  CHECK(first.to == 0);
  CHECK(drain(balance, 0, 16).count == 0);  // the lowest worker never gathers elsewhere
  balance.report(1, busy(0.1), 7, clock.next());
  CHECK(drain(balance, 1, 7).count == 4);
  CHECK(balance.moves() == 13);
}

TEST_CASE("worker balance: one tick above gather_below starts the count again") {
  WorkerBalance balance(2);
  Ticks clock;
  tick(balance, clock, 0.1, 0.1, 8, 3);
  tick(balance, clock, 0.3, 0.3, 8, 1);
  tick(balance, clock, 0.1, 0.1, 8, 3);
  CHECK(drain(balance, 1, 8).count == 0);
  tick(balance, clock, 0.1, 0.1, 8, 1);
  CHECK(drain(balance, 1, 8).count == 5);
}

TEST_CASE("worker balance: gathering looks at CPU time, not at time waiting for a CPU") {
  WorkerBalance balance(2);
  Ticks clock;
  for (int i = 0; i < 4; ++i) {
    auto now = clock.next();
    balance.report(0, {0.2, 0.5}, 8, now);
    balance.report(1, {0.2, 0.6}, 8, now);
  }
  CHECK(drain(balance, 1, 8).count == 5);
}

TEST_CASE("worker balance: no gathering when the two together are busier than gather_below") {
  WorkerBalance balance(2);
  Ticks clock;
  tick(balance, clock, 0.30, 0.30, 16, 10);
  CHECK(drain(balance, 1, 16).count == 0);
  // Neither in the band between gather_below and spread_above moves, nor a single spike above it.
  tick(balance, clock, 0.65, 0.0, 32, 10);
  CHECK(drain(balance, 0, 32).count == 0);
  tick(balance, clock, 0.95, 0.0, 32, 1);
  tick(balance, clock, 0.65, 0.0, 32, 1);
  tick(balance, clock, 0.95, 0.0, 32, 1);
  CHECK(drain(balance, 0, 32).count == 0);
}

TEST_CASE("worker balance: a worker whose demand stays above spread_above hands a quarter per tick to the one with least") {
  WorkerBalance balance(3);
  auto now = WorkerBalance::Clock::time_point{} + 1s;
  balance.report(1, busy(0.40), 8, now);
  balance.report(2, {0.05, 0.10}, 4, now);
  balance.report(0, {0.60, 0.95}, 32, now);  // 60% on a CPU, but waiting for one the rest of the time
  CHECK(drain(balance, 0, 32).count == 0);   // one tick could be a spike
  now += 50ms;
  balance.report(0, {0.60, 0.95}, 32, now);
  Moved moved = drain(balance, 0, 32);
  CHECK(moved.count == 9);  // 32 / 4 + 1
  CHECK(moved.to == 2);
  // Next tick: the gap to the least busy worker is no longer over spread_gap.
  now += 50ms;
  balance.report(2, busy(0.75), 13, now);
  balance.report(1, busy(0.80), 8, now);
  balance.report(0, busy(0.97), 23, now);
  CHECK(drain(balance, 0, 23).count == 0);
}

TEST_CASE("worker balance: after a spread nobody gathers for gather_hold") {
  WorkerBalance balance(2);
  Ticks clock;
  tick(balance, clock, 0.95, 0.05, 16, 2);
  CHECK(drain(balance, 0, 16).count == 5);
  // Light load at once after: held for 10 s (200 ticks), then four light ticks.
  tick(balance, clock, 0.1, 0.1, 16, 199);
  CHECK(drain(balance, 1, 16).count == 0);
  tick(balance, clock, 0.1, 0.1, 16, 4);
  CHECK(drain(balance, 1, 16).count == 9);
}

TEST_CASE("worker balance: a worker's plan lasts until its next tick; one worker never moves anything") {
  WorkerBalance balance(2);
  Ticks clock;
  tick(balance, clock, 0.1, 0.1, 4, 4);
  CHECK(drain(balance, 1, 4).count == 3);
  balance.report(1, busy(0.1), 0, clock.next());  // nothing left to gather
  CHECK(drain(balance, 1, 4).count == 0);

  WorkerBalance single(1);
  single.report(0, busy(1.0), 100, clock.next());
  CHECK(drain(single, 0, 100).count == 0);
  CHECK(single.load(0).cpu == Approx(1.0));
}

TEST_CASE("worker balance: shares are clamped to 0..1 and demand is at least the CPU time") {
  WorkerBalance balance(2);
  auto now = WorkerBalance::Clock::time_point{};
  balance.report(0, {1.7, 2.0}, 1, now);
  balance.report(1, {0.4, 0.1}, 1, now);
  CHECK(balance.load(0).cpu == Approx(1.0));
  CHECK(balance.load(0).demand == Approx(1.0));
  CHECK(balance.load(1).demand == Approx(0.4));
}
