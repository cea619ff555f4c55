package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
)

// Soak bounds: once the load stops (and the authorizer's idle connections have closed),
// portcullis must be back within goroutineSlack goroutines of where it was before the load,
// and its RSS within rssSlack (at least rssSlackMin) of what it was after the warm-up (when
// caches and pools have reached their working size).
const (
	goroutineSlack = 10
	rssSlack       = 0.25
	rssSlackMin    = 32 << 20
)

// soakPool is the soak's mix, per 1,000 requests: allows of every kind, denies (401, 403,
// 404), and authorizer faults (timeouts, 5xx, garbage, resets) on a failurePolicy: Allow
// authorizer (degraded allows; garbage is a 500 as it is not the function being down) and
// a failurePolicy: Deny one (500).
func soakPool(w world, now time.Time, seed uint64) []entry {
	bd := &builder{w: w, rng: newRand(seed), now: now}
	on := func(k kind) int { bs := w.bindingsOfKind(k); return bs[bd.rng.IntN(len(bs))] }
	fault := func(k kind, prefix string, want expect) func(int) entry {
		return func(int) entry {
			e := bd.allow(on(k), "x")
			e.tokenPrefix, e.want = prefix, want
			e.want.fault = true
			e.want.orDegraded = k == kindTwoFactorFailOpen
			if want.code == codes.OK {
				e.want.credential = ""
			}
			return e
		}
	}
	degraded := expect{code: codes.OK, degraded: true}
	failed := expect{code: codes.Internal, httpStatus: 500}
	mix := []struct {
		n int
		f func(i int) entry
	}{
		{290, func(i int) entry { return bd.allow(on(kindTwoFactor), fmt.Sprintf("tok-%d", i%512)) }},
		{150, func(int) entry { return bd.allow(on(kindSignature), "") }},
		{150, func(int) entry { return bd.allow(on(kindAppCode), "") }},
		{100, func(int) entry { e := bd.allow(on(kindTwoFactorUncached), "u"); e.tokenPrefix = "u-"; return e }},
		{40, func(i int) entry {
			e := bd.allow(on(kindTwoFactorFailOpen), fmt.Sprintf("tok-%d", i%64))
			e.want.orDegraded = true
			return e
		}},
		{50, func(int) entry { return bd.allow(on(kindAnonymous), "") }},
		{50, func(int) entry { return bd.noRoute(on(kindTwoFactor)) }},
		{50, func(int) entry { return bd.badAppCode(on(kindAppCode)) }},
		{50, func(i int) entry {
			e := bd.allow(on(kindTwoFactor), fmt.Sprintf("%s%d", denyPrefix, i%64))
			e.want = expect{code: codes.PermissionDenied, httpStatus: 403}
			return e
		}},
		{1, fault(kindTwoFactorFailOpen, faultTimeout, degraded)},
		{15, fault(kindTwoFactorFailOpen, fault5xx, degraded)},
		{15, fault(kindTwoFactorFailOpen, faultReset, degraded)},
		{15, fault(kindTwoFactorFailOpen, faultGarbage, failed)},
		{1, fault(kindTwoFactor, faultTimeout, failed)},
		{8, fault(kindTwoFactor, fault5xx, failed)},
		{8, fault(kindTwoFactor, faultReset, failed)},
		{7, fault(kindTwoFactor, faultGarbage, failed)},
	}
	var out []entry
	for range 10 {
		for _, m := range mix {
			for i := range m.n {
				out = append(out, m.f(i))
			}
		}
	}
	bd.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// vitals are what the soak watches of portcullis.
type vitals struct {
	goroutines float64 // go_goroutines from /metrics
	heap       float64 // go_memstats_heap_inuse_bytes
	rss        uint64  // VmRSS
}

func (v vitals) String() string {
	return fmt.Sprintf("goroutines %.0f, heap in use %.1f MB, RSS %.1f MB", v.goroutines, v.heap/(1<<20), float64(v.rss)/(1<<20))
}

// metrics reads portcullis's /metrics: each metric's value summed over its labels (key: the
// name), and each series (key: the name with its labels, as exposed).
func metrics(s *server) (map[string]float64, error) {
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, name := line[:i], line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		out[name] += v
		if series != name {
			out[series] = v
		}
	}
	return out, sc.Err()
}

func scrape(s *server) (vitals, error) {
	var v vitals
	m, err := metrics(s)
	if err != nil {
		return v, err
	}
	var ok1, ok2 bool
	v.goroutines, ok1 = m["go_goroutines"]
	v.heap, ok2 = m["go_memstats_heap_inuse_bytes"]
	if !ok1 || !ok2 {
		return v, errors.New("/metrics: go_goroutines or go_memstats_heap_inuse_bytes missing")
	}
	v.rss, err = procStatus(s.pid(), "VmRSS")
	return v, err
}

func runSoak(args []string) error {
	var c common
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	c.register(fs)
	duration := fs.Duration("duration", 10*time.Minute, "how long to keep the load on")
	worldName := fs.String("world", "small", "policy world: small or large")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, ok := worlds[*worldName]
	if !ok {
		return fmt.Errorf("unknown world %q", *worldName)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := newRig(ctx, &c, false)
	if r != nil {
		defer r.close(c.keep)
	}
	if err != nil {
		return err
	}
	s, err := r.startPortcullis(ctx, &c, w, false)
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("soak: world %s, %d streams over %d connections, %s; cold start %.2f s\n", w.name, c.streams, c.conns, *duration, s.firstCheck.Seconds())
	time.Sleep(time.Second)
	idle, err := scrape(s)
	if err != nil {
		return err
	}
	fmt.Println("before the load:         ", idle)

	const chunk = 10 * time.Second
	const resign = 5 * time.Minute // X-Sdk-Date must stay within --max-clock-skew (15m)
	l := newLoad(c.streams, soakPool(w, time.Now(), 1))
	signedAt := time.Now()
	warmUntil := max(*duration/10, min(30*time.Second, *duration/2))
	var warm vitals
	warmed := false
	begin := time.Now()
	lastReport := begin
	for elapsed := time.Duration(0); elapsed < *duration && ctx.Err() == nil; elapsed = time.Since(begin) {
		if time.Since(signedAt) > resign {
			l.setPool(soakPool(w, time.Now(), 1))
			signedAt = time.Now()
		}
		l.round(ctx, s.t, min(chunk, *duration-elapsed))
		if !warmed && time.Since(begin) >= warmUntil {
			if warm, err = scrape(s); err != nil {
				return err
			}
			warmed = true
			fmt.Printf("after %s of load: %v\n", time.Since(begin).Round(time.Second), warm)
		}
		if time.Since(lastReport) >= time.Minute {
			lastReport = time.Now()
			t := l.total("portcullis")
			v, _ := scrape(s)
			fmt.Printf("  %6s: %d checks (%.0f/s), %d unexpected; %v\n", time.Since(begin).Round(time.Second), t.checks,
				float64(t.checks)/time.Since(begin).Seconds(), t.unexpected, v)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	loadTime := time.Since(begin)
	for _, conn := range s.conns {
		_ = conn.Close()
	}
	// Settle: our gRPC connections are closed, the authorizer closes idle keep-alive
	// connections after 5 s.
	var after vitals
	time.Sleep(7 * time.Second)
	for deadline := time.Now().Add(time.Minute); ; {
		time.Sleep(time.Second)
		if after, err = scrape(s); err != nil {
			return err
		}
		if after.goroutines <= idle.goroutines+goroutineSlack || time.Now().After(deadline) {
			break
		}
	}
	if !warmed {
		warm = after
	}
	fmt.Println("after the load stopped:  ", after)

	t := l.total("portcullis")
	us := func(q float64) float64 { return float64(t.hist.quantile(q)) / 1e3 }
	fmt.Printf("\n%d checks in %s (%.0f/s); p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs; max %.0f ms\n", t.checks, loadTime.Round(time.Second),
		float64(t.checks)/loadTime.Seconds(), us(0.5), us(0.99), us(0.999), us(1)/1e3)
	fmt.Printf("faults allowed with x-portcullis-degraded: %d; without: %d\n", t.faultAllowDegraded, t.faultAllowNotDegraded)
	var fails []string
	if t.unexpected > 0 {
		l.mu.Lock()
		fails = append(fails, fmt.Sprintf("%d unexpected answers (%d RPC errors), e.g.:\n  %s", t.unexpected, t.rpcErrors, strings.Join(l.bad, "\n  ")))
		l.mu.Unlock()
	}
	if t.faultAllowNotDegraded > 0 {
		fails = append(fails, fmt.Sprintf("%d authorizer faults were allowed without x-portcullis-degraded", t.faultAllowNotDegraded))
	}
	if t.faultAllowDegraded == 0 {
		fails = append(fails, "no degraded allow seen: the fault mix did not reach the failurePolicy: Allow authorizer")
	}
	gBound := idle.goroutines + goroutineSlack
	rssBound := warm.rss + max(uint64(rssSlackMin), uint64(float64(warm.rss)*rssSlack))
	fmt.Printf("bounds: goroutines after <= %.0f (before + %d): %.0f; RSS after <= %.1f MB (after warm-up + max(%d MB, %.0f%%)): %.1f MB\n",
		gBound, goroutineSlack, after.goroutines, float64(rssBound)/(1<<20), rssSlackMin>>20, rssSlack*100, float64(after.rss)/(1<<20))
	if after.goroutines > gBound {
		fails = append(fails, fmt.Sprintf("goroutines grew from %.0f to %.0f", idle.goroutines, after.goroutines))
	}
	if after.rss > rssBound {
		fails = append(fails, fmt.Sprintf("RSS grew from %.1f MB (warm) to %.1f MB", float64(warm.rss)/(1<<20), float64(after.rss)/(1<<20)))
	}
	if len(fails) > 0 {
		return fmt.Errorf("soak failed:\n%s", strings.Join(fails, "\n"))
	}
	fmt.Println("soak: ok")
	return nil
}
