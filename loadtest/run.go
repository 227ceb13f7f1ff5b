package loadtest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Run loads cfg.URL with cfg.Connections connections for cfg.Ramp and
// cfg.Warmup (not counted) then cfg.Duration (counted), and returns what
// it measured. It returns by itself when the window ends; cancelling ctx
// stops it early with the partial Result and ctx.Err(). A Config error is
// returned before any connection is opened and wraps ErrBadConfig.
func Run(ctx context.Context, cfg Config) (Result, error) {
	p, err := cfg.plan()
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	start := time.Now()
	measureStart := start.Add(cfg.Ramp + cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	stop := make(chan struct{})

	shards := make([]*histShard, min(cfg.Connections, maxHistShards))
	for i := range shards {
		shards[i] = newHistShard(p.interval > 0)
	}
	workers := make([]*worker, cfg.Connections)
	firsts := make([]time.Time, cfg.Connections)
	for i := range workers {
		workers[i] = newWorker(ctx, p, stop, measureStart, end, i, shards[i%len(shards)])
		// Users arrive evenly over the ramp; open-loop connections are
		// staggered evenly over one interval so the total rate is smooth
		// rather than N requests in a burst.
		spread := cfg.Ramp
		if p.interval > 0 {
			spread = max(spread, p.interval)
		}
		firsts[i] = start.Add(spread * time.Duration(i) / time.Duration(cfg.Connections))
	}

	cpu := make(chan CPUUsage, 1)
	go measureCPU(cfg.CPUPIDs, measureStart, end, stop, cpu)

	// On cancel: close stop (workers check it between requests and while
	// waiting) and pull every blocking read's deadline into the past.
	stopWatch := context.AfterFunc(ctx, func() {
		close(stop)
		for _, w := range workers {
			w.unblock()
		}
	})
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		first := firsts[i]
		switch {
		case p.interval > 0:
			go func() { defer wg.Done(); w.runOpen(first) }()
		case p.think > 0:
			go func() { defer wg.Done(); w.runUsers(first) }()
		default:
			go func() { defer wg.Done(); w.runClosed(first) }()
		}
	}

	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go reportProgress(cfg, workers, start, measureStart, end, stop, progressDone)
	} else {
		close(progressDone)
	}
	wg.Wait()
	stopped := !stopWatch()
	finished := time.Now()
	if !stopped {
		close(stop) // ends the progress goroutine
	}
	<-progressDone

	res := Result{Connections: cfg.Connections, Rate: cfg.Rate, Duration: cfg.Duration, CPU: <-cpu}
	if stopped {
		res.Duration = max(finished.Sub(measureStart), 0)
	}
	for i, w := range workers {
		res.Requests += w.ok.Load()
		res.Errors += w.errors
		res.Timeouts += w.timeouts
		res.Non2xx += w.non2xx
		res.BadBody += w.badBody
		if p.interval > 0 && !stopped {
			res.Scheduled += scheduled(firsts[i], p.interval, measureStart, end, p.perWorker)
		}
	}
	hs := make([]*hdrhistogram.Histogram, 0, len(shards))
	svc := make([]*hdrhistogram.Histogram, 0, len(shards))
	for _, sh := range shards {
		hs = append(hs, sh.hist)
		svc = append(svc, sh.service)
	}
	res.Latency = percentiles(mergeHistograms(hs))
	res.Service = res.Latency
	if p.interval > 0 {
		res.Service = percentiles(mergeHistograms(svc))
	}
	if stopped {
		return res, ctx.Err()
	}
	return res, nil
}

// scheduled counts the send times first + k·interval, k < limit, that fall
// in [from, to): the requests one open-loop connection owes the window.
func scheduled(first time.Time, interval time.Duration, from, to time.Time, limit int64) int64 {
	// index of the first due time at or after t
	idx := func(t time.Time) int64 {
		d := t.Sub(first)
		if d <= 0 {
			return 0
		}
		return int64((d + interval - 1) / interval)
	}
	lo, hi := min(idx(from), limit), min(idx(to), limit)
	return hi - lo
}

// measureCPU reads the CPU clocks when the measured phase starts and when
// it ends (or the workers stop, if sooner), and sends what was spent
// between; an unmeasured CPUUsage if the run stops before the phase.
func measureCPU(pids []int, from, to time.Time, stop <-chan struct{}, out chan<- CPUUsage) {
	wait := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-stop:
			return false
		}
	}
	if !wait(from) {
		out <- CPUUsage{}
		return
	}
	before := sampleCPU(pids)
	wait(to)
	out <- before.usage(sampleCPU(pids))
}

// reportProgress calls cfg.Progress every interval until stop closes.
func reportProgress(cfg Config, workers []*worker, start, measureStart, end time.Time, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := cfg.ProgressInterval
	if every <= 0 {
		every = DefaultProgressInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if now.After(end) {
				now = end
			}
			pr := Progress{Warmup: now.Before(measureStart)}
			if pr.Warmup {
				pr.Elapsed, pr.Total = now.Sub(start), measureStart.Sub(start)
			} else {
				pr.Elapsed, pr.Total = now.Sub(measureStart), end.Sub(measureStart)
				for _, w := range workers {
					pr.Requests += w.ok.Load()
					pr.Failed += w.failed.Load()
				}
			}
			cfg.Progress(pr)
		}
	}
}

// String renders p for a progress line: "warm-up 1.2s/2s" or
// "12.0s/30s 45,120 req/s 0 failed".
func (p Progress) String() string {
	el := strconv.FormatFloat(p.Elapsed.Seconds(), 'f', 1, 64) + "s/" + p.Total.String()
	if p.Warmup {
		return "warm-up " + el
	}
	return el + " " + FormatCount(int64(math.Round(p.RPS()))) + " req/s " + FormatCount(p.Failed) + " failed"
}
