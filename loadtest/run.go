package loadtest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Run loads cfg.URL with cfg.Connections connections for cfg.Warmup (not
// counted) then cfg.Duration (counted), and returns what it measured. It
// returns by itself when the window ends; cancelling ctx stops it early
// with the partial Result and ctx.Err(). A Config error is returned before
// any connection is opened and wraps ErrBadConfig.
func Run(ctx context.Context, cfg Config) (Result, error) {
	p, err := cfg.plan()
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	start := time.Now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	stop := make(chan struct{})

	workers := make([]*worker, cfg.Connections)
	for i := range workers {
		workers[i] = newWorker(ctx, p, stop, measureStart, end)
	}

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
		if p.interval > 0 {
			// Stagger the connections evenly over one interval so the
			// total rate is smooth rather than N requests in a burst.
			first := start.Add(p.interval * time.Duration(i) / time.Duration(len(workers)))
			go func() { defer wg.Done(); w.runOpen(first) }()
		} else {
			go func() { defer wg.Done(); w.runClosed() }()
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

	res := Result{Connections: cfg.Connections, Rate: cfg.Rate, Duration: cfg.Duration}
	if stopped {
		res.Duration = max(finished.Sub(measureStart), 0)
	}
	hs := make([]*hdrhistogram.Histogram, 0, len(workers))
	svc := make([]*hdrhistogram.Histogram, 0, len(workers))
	for _, w := range workers {
		res.Requests += w.ok.Load()
		res.Errors += w.errors
		res.Timeouts += w.timeouts
		res.Non2xx += w.non2xx
		res.BadBody += w.badBody
		hs = append(hs, w.hist)
		svc = append(svc, w.service)
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
