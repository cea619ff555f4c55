package extauthz_test

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
)

// benchServer is the ext_authz server over the fixture world, its authorizer a local function
// (enginetest.Authorizer, which allows token t0k).
func benchServer(b *testing.B) *extauthz.Server {
	b.Helper()
	snap := enginetest.World(b, enginetest.Authorizer(b), time.Now())
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: authorizer.New(authorizer.Options{})}
	return &extauthz.Server{Engine: eng}
}

// floor answers OK without reading the request: the cost of the protocol alone.
type floor struct {
	authv3.UnimplementedAuthorizationServer
}

func (floor) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}, nil
}

var benchRequests = []struct {
	name string
	req  *authv3.CheckRequest
	want codes.Code
}{
	{"TwoFactorCached", envoyRequest("GET", "api.example.com", "/orders/7?test=demo", map[string]string{"x-app-code": appCode, "token": "t0k"}), codes.OK},
	{"AppCode", envoyRequest("GET", "api.example.com", "/catalog/7", map[string]string{"x-app-code": appCode}), codes.OK},
	{"Anonymous", envoyRequest("GET", "api.example.com", "/healthz", nil), codes.OK},
	{"NotFound", envoyRequest("GET", "api.example.com", "/nowhere", nil), codes.NotFound},
}

// BenchmarkCheck is one Check in process: conversion from the CheckRequest, the decision and
// the CheckResponse, without the gRPC transport.
func BenchmarkCheck(b *testing.B) {
	s := benchServer(b)
	ctx := context.Background()
	for _, tc := range benchRequests {
		b.Run(tc.name, func(b *testing.B) {
			want := int32(tc.want)
			if resp, err := s.Check(ctx, tc.req); err != nil || resp.GetStatus().GetCode() != want { // warms the authorizer cache
				b.Fatalf("Check = %v, %v; want code %v", resp.GetStatus(), err, tc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := s.Check(ctx, tc.req); resp.GetStatus().GetCode() != want {
					b.Fatalf("status %v, want %v", resp.GetStatus(), tc.want)
				}
			}
		})
	}
}

// BenchmarkCheckLoopback drives the gRPC server over loopback from parallel goroutines, next
// to a server that answers OK without looking (Floor). Allocations include the client's.
func BenchmarkCheckLoopback(b *testing.B) {
	run := func(b *testing.B, gs *grpc.Server, req *authv3.CheckRequest) {
		client := authv3.NewAuthorizationClient(enginetest.Serve(b, gs))
		ctx := context.Background()
		if _, err := client.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(16) // 32 streams on 2 cores, as the load test runs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	portcullis := func(b *testing.B) *grpc.Server {
		gs, _ := extauthz.NewGRPCServer(benchServer(b))
		return gs
	}
	b.Run("Floor", func(b *testing.B) {
		gs := grpc.NewServer()
		authv3.RegisterAuthorizationServer(gs, floor{})
		run(b, gs, benchRequests[0].req)
	})
	b.Run("TwoFactorCached", func(b *testing.B) { run(b, portcullis(b), benchRequests[0].req) })
	b.Run("AppCode", func(b *testing.B) { run(b, portcullis(b), benchRequests[1].req) })
}
