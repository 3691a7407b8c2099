#include "worker_balance.h"

#include <algorithm>
#include <cmath>

namespace medicus::gateway {

namespace {
uint32_t permille(double share) { return static_cast<uint32_t>(std::lround(std::clamp(share, 0.0, 1.0) * 1000)); }
}  // namespace

WorkerBalance::WorkerBalance(size_t workers, Thresholds thresholds)
    : workers_(std::max<size_t>(workers, 1)), thresholds_(thresholds), slots_(std::make_unique<Slot[]>(workers_)) {
  for (size_t i = 0; i < workers_; ++i) slots_[i].target = i;
}

void WorkerBalance::report(size_t worker, Load load, size_t connections, Clock::time_point now) {
  Slot& mine = slots_[worker];
  mine.cpu_permille.store(permille(load.cpu), std::memory_order_relaxed);
  mine.demand_permille.store(permille(std::max(load.cpu, load.demand)), std::memory_order_relaxed);
  Load own = this->load(worker);
  mine.target = worker;
  mine.budget = 0;
  if (workers_ < 2 || connections == 0) {
    mine.light_ticks = mine.heavy_ticks = 0;
    return;
  }

  if (own.demand > thresholds_.spread_above) {
    mine.light_ticks = 0;
    if (++mine.heavy_ticks < thresholds_.spread_after_ticks) return;
    size_t least = worker;
    double least_demand = own.demand;
    for (size_t i = 0; i < workers_; ++i) {
      double d = this->load(i).demand;
      if (i != worker && d < least_demand) {
        least = i;
        least_demand = d;
      }
    }
    if (least != worker && own.demand - least_demand > thresholds_.spread_gap) {
      // A quarter per tick: the other worker's load shows on its next tick, before too many go.
      mine.target = least;
      mine.budget = connections / 4 + 1;
      gather_held_until_.store((now + thresholds_.gather_hold).time_since_epoch().count(), std::memory_order_relaxed);
    }
    return;
  }
  mine.heavy_ticks = 0;
  if (now.time_since_epoch().count() < gather_held_until_.load(std::memory_order_relaxed)) {
    mine.light_ticks = 0;
    return;
  }
  for (size_t lower = 0; lower < worker; ++lower) {
    if (this->load(lower).cpu + own.cpu < thresholds_.gather_below) {
      if (++mine.light_ticks < thresholds_.gather_after_ticks) return;
      // Half per tick: with several workers gathering into one, its load shows before all arrive.
      mine.target = lower;
      mine.budget = connections / 2 + 1;
      return;
    }
  }
  mine.light_ticks = 0;
}

size_t WorkerBalance::nextHome(size_t worker) {
  Slot& mine = slots_[worker];
  if (mine.budget == 0) return worker;
  --mine.budget;
  mine.moves.store(mine.moves.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return mine.target;
}

WorkerBalance::Load WorkerBalance::load(size_t worker) const {
  return {slots_[worker].cpu_permille.load(std::memory_order_relaxed) / 1000.0,
          slots_[worker].demand_permille.load(std::memory_order_relaxed) / 1000.0};
}

uint64_t WorkerBalance::moves() const {
  uint64_t n = 0;
  for (size_t i = 0; i < workers_; ++i) n += slots_[i].moves.load(std::memory_order_relaxed);
  return n;
}

}  // namespace medicus::gateway
