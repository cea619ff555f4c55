package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
	"github.com/portcullis-dev/portcullis/authz/httpauth"
	"github.com/portcullis-dev/portcullis/authz/observe"
	"github.com/portcullis-dev/portcullis/controllers"
)

// frontends wires the decision engine to its two front-ends.
type frontends struct {
	grpcAddr, httpAddr string
	maxClockSkew       time.Duration
	maxBodyBytes       int64
	maxHeaders         int
	maxHeaderBytes     int
	trusted            []netip.Prefix
	logDecisions       bool
	mode               httpauth.Mode
	log                logr.Logger
}

func (f frontends) run(ctx context.Context, policy *controllers.Policy) error {
	tracing, err := observe.TracingFromEnv(ctx, version)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	}()
	var transport http.RoundTripper
	if tracing.Enabled() {
		transport = tracing.Transport(authorizer.NewTransport())
		f.log.Info("Tracing Check calls, forward-auth requests and authorizer calls with OpenTelemetry")
	}
	client := authorizer.New(authorizer.Options{Transport: transport})
	defer client.CloseIdleConnections()
	eng := &engine.Engine{
		Snapshot:       policy.Snapshot,
		Authorizer:     client,
		MaxClockSkew:   f.maxClockSkew,
		MaxBodyBytes:   f.maxBodyBytes,
		MaxHeaders:     f.maxHeaders,
		MaxHeaderBytes: f.maxHeaderBytes,
	}
	obs, err := observe.New(metrics.Registry, client, policy.Snapshot, f.log, f.logDecisions)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer obs.Unregister()
	grpcLn, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	gs, health := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng, Observe: obs.For("grpc")}, tracing.GRPC...)
	health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs := &httpauth.Handler{Engine: eng, Mode: f.mode, TrustedProxies: f.trusted, MaxBodyBytes: f.maxBodyBytes, Observe: obs.For("http")}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := gs.Serve(grpcLn); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	var hh http.Handler = hs
	if tracing.Enabled() {
		hh = tracing.HTTP(hs)
	}
	g.Go(func() error { return controllers.ListenAndServe(ctx, f.httpAddr, hh) })
	g.Go(func() error {
		// The gRPC health service follows readiness, as /readyz does.
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		serving := false
		for {
			select {
			case <-ctx.Done():
				health.Shutdown()
				stopped := make(chan struct{})
				go func() { gs.GracefulStop(); close(stopped) }()
				select {
				case <-stopped:
				case <-time.After(10 * time.Second):
					gs.Stop()
				}
				return nil
			case <-t.C:
				if !serving && policy.Ready() {
					serving = true
					health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
					f.log.Info("Serving decisions", "grpc", f.grpcAddr, "http", f.httpAddr)
				}
			}
		}
	})
	return g.Wait()
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
