// Command sample-authorizer is the custom authorizer of the APIG two-factor example: it
// allows a request when header "token" and query parameter "test" carry the configured
// values, and answers in the APIG format with a small context. `make run` starts it next to
// Portcullis; it is an example of the wire contract, not a component to deploy.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
)

type event struct {
	HTTPMethod string            `json:"httpMethod"`
	Path       string            `json:"path"`
	Headers    map[string]string `json:"headers"`
	Query      map[string]string `json:"queryStringParameters"`
	UserData   string            `json:"user_data"`
	Context    struct {
		RequestID  string `json:"requestId"`
		Credential string `json:"credential"`
	} `json:"requestContext"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	token := flag.String("token", "demo-token", "the value header token must carry")
	test := flag.String("test", "demo", "the value query parameter test must carry")
	flag.Parse()

	http.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		var ev event
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		status := "deny"
		if ev.Headers["token"] == *token && ev.Query["test"] == *test {
			status = "allow"
		}
		log.Printf("%s %s %s credential=%q user_data=%q -> %s", ev.Context.RequestID, ev.HTTPMethod, ev.Path, ev.Context.Credential, ev.UserData, status)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":  status,
			"context": map[string]any{"user": "user-42", "tier": "gold", "checked": true},
		})
	})
	log.Printf("sample authorizer on http://%s/verify (token=%q, test=%q)", *addr, *token, *test)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
