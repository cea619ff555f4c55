package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// floorServer is the protocol floor: an ext_authz server that answers OK without looking
// at the request. What Portcullis costs is measured against it.
type floorServer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (floorServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// skipDecode is gRPC's proto codec, but it leaves CheckRequests empty instead of decoding
// them: the floor of a server that answers without reading the request at all.
type skipDecode struct{ encoding.CodecV2 }

func (c skipDecode) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(*authv3.CheckRequest); ok {
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// runFloor is the `floor` subcommand.
func runFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "gRPC listen address")
	skip := fs.Bool("skip-decode", false, "do not decode CheckRequests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if *skip {
		opts = append(opts, grpc.ForceServerCodecV2(skipDecode{encoding.GetCodecV2(proto.Name)}))
	}
	g := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(g, floorServer{})
	go func() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		g.Stop()
	}()
	return g.Serve(ln)
}

// Identities (x-user-token prefixes) the local authorizer misbehaves for.
const (
	faultTimeout = "fault-timeout-" // answers after 3 s (the authorizers' timeouts are 200ms and 1s)
	fault5xx     = "fault-5xx-"     // 503
	faultGarbage = "fault-garbage-" // 200 with a body that is not JSON
	faultReset   = "fault-reset-"   // resets the connection without answering
	denyPrefix   = "deny-"          // {"status":"deny"}
)

// runAuthorizer is the `authorizer` subcommand: a custom authorizer answering in the APIG
// format (DESIGN.md §4) at once: allow with context {"user": "user-<token>"}, except for
// the identities above.
func runAuthorizer(args []string) error {
	fs := flag.NewFlagSet("authorizer", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "HTTP listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type event struct {
		Headers map[string]string `json:"headers"`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var ev event
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		token := ev.Headers["x-user-token"]
		switch {
		case strings.HasPrefix(token, faultTimeout):
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
				return
			}
		case strings.HasPrefix(token, fault5xx):
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		case strings.HasPrefix(token, faultGarbage):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{\"status\": allow, ]]")
			return
		case strings.HasPrefix(token, faultReset):
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // RST, not FIN
					}
					_ = c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case strings.HasPrefix(token, denyPrefix):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"deny"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		out, _ := json.Marshal(map[string]any{"status": "allow", "context": map[string]string{"user": userOf(token)}})
		_, _ = w.Write(out)
	})
	// IdleTimeout: idle keep-alive connections go away soon after the load stops, so the
	// soak's goroutine count of Portcullis (two per connection) settles.
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		ErrorLog: nil}
	go func() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// proc is a child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the child has exited
}

// start starts a child whose output goes to logFile; it is killed if this process dies.
func start(name, logFile, bin string, args ...string) (*proc, error) {
	return startEnv(name, logFile, nil, bin, args...)
}

// startEnv is start with env added to the child's environment.
func startEnv(name, logFile string, env []string, bin string, args ...string) (*proc, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop ends the child (SIGTERM, then SIGKILL after 5 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of the child's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// clkTck is USER_HZ, the unit of /proc/<pid>/stat times (100 on every Linux architecture
// Go supports).
const clkTck = 100

// cpuTicks returns utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}

// procStatus returns a field of /proc/<pid>/status in bytes (VmHWM, VmRSS).
func procStatus(pid int, field string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// dial opens n gRPC connections to addr.
func dial(addr string, n int) ([]authv3.AuthorizationClient, []*grpc.ClientConn, error) {
	var clients []authv3.AuthorizationClient
	var conns []*grpc.ClientConn
	for range n {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		conns = append(conns, c)
		clients = append(clients, authv3.NewAuthorizationClient(c))
	}
	return clients, conns, nil
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(ctx context.Context, url string, every time.Duration) error {
	cl := &http.Client{Timeout: time.Second}
	for {
		resp, err := cl.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not 200 in time (last error %v)", url, err)
		case <-time.After(every):
		}
	}
}
