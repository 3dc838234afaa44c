// A session worker written in Go, on the astack Go binding.
//
//	cd examples/go && go run .
//
// It embeds an engine (as the control plane would share it), registers itself as worker
// "gpu-1", and serves clients: a client presents its session token at POST /join; the worker
// verifies it (the audience must be its node id) and reports the connect; at the end it
// reports the session's end. With -serve it keeps serving; otherwise it plays one client
// through the whole flow and exits.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	astack "github.com/astack-dev/astack/bindings/go"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	nodeID := flag.String("node-id", "gpu-1", "this worker's node id (the audience of its tokens)")
	serve := flag.Bool("serve", false, "keep serving instead of running one demo client")
	flag.Parse()
	if err := run(*listen, *nodeID, *serve); err != nil {
		log.Fatal(err)
	}
}

// Setup makes an engine with an operator, this worker registered, a worker key and an app
// key; it returns the worker and the app's key.
func Setup(nodeID, url string) (*Worker, string, error) {
	engine, err := astack.New(nil)
	if err != nil {
		return nil, "", err
	}
	admin, err := engine.BootstrapAdminKey("")
	if err != nil {
		return nil, "", err
	}
	op, err := engine.Authorize(admin, astack.OpAdmin)
	if err != nil {
		return nil, "", err
	}
	if _, err := engine.RegisterWorker(op.KeyID, astack.Worker{NodeID: nodeID, URL: url, Capacity: 100}); err != nil {
		return nil, "", err
	}
	workerKey, err := engine.CreateKey(op.KeyID, astack.CreateKeyRequest{Name: nodeID, Scopes: []string{"workers:write"}})
	if err != nil {
		return nil, "", err
	}
	appKey, err := engine.CreateKey(op.KeyID, astack.CreateKeyRequest{Name: "app", AccountID: "acme",
		Scopes: []string{"sessions:write", "sessions:read"}})
	if err != nil {
		return nil, "", err
	}
	return &Worker{Engine: engine, NodeID: nodeID, Key: workerKey.Secret}, appKey.Secret, nil
}

func run(listen, nodeID string, serve bool) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	worker, appKey, err := Setup(nodeID, url)
	if err != nil {
		return err
	}
	defer worker.Engine.Close()
	srv := &http.Server{Handler: worker.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("worker %s serving on %s (astack %s)\n", nodeID, url, astack.Version())
	if serve {
		fmt.Printf("app key (account acme): %s\n", appKey)
		select {}
	}
	return Demo(worker.Engine, appKey, os.Stdout)
}

// Demo plays the app and one client: the app creates a session; the client joins the worker
// it was placed on with the session token; the worker later ends it.
func Demo(engine *astack.Engine, appKey string, out *os.File) error {
	d, err := engine.Authorize(appKey, astack.OpSessionCreate)
	if err != nil {
		return err
	}
	created, err := engine.CreateSession(d.KeyID, astack.CreateSessionRequest{EndUserID: "user-42", Features: []string{"transcription"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "app: session %s placed on %s (%s)\n", created.ID, created.NodeID, created.WorkerURL)

	req, _ := http.NewRequest("POST", created.WorkerURL+"/join", nil)
	req.Header.Set("Authorization", "Bearer "+created.SessionToken)
	var joined Joined
	if err := do(req, &joined); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	fmt.Fprintf(out, "client: joined %s as %s, status %s, features %v\n", joined.SessionID, joined.EndUserID, joined.Status, joined.Features)

	body, _ := json.Marshal(astack.EndSessionRequest{Outcome: astack.OutcomeCompleted, Reason: "call ended"})
	req, _ = http.NewRequest("POST", created.WorkerURL+"/sessions/"+created.ID+"/leave", bytes.NewReader(body))
	var ended astack.Session
	if err := do(req, &ended); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	fmt.Fprintf(out, "worker: session %s ended: %s (%s)\n", ended.ID, ended.Status, *ended.EndReason)
	if ended.Status != astack.StatusCompleted {
		return fmt.Errorf("unexpected status %s", ended.Status)
	}
	fmt.Fprintln(out, "demo: done")
	return nil
}

// do sends req and decodes a 200 answer into v, or returns the SPEC error body.
func do(req *http.Request, v any) error {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(res.Body)
		return fmt.Errorf("status %d: %s", res.StatusCode, body.String())
	}
	return json.NewDecoder(res.Body).Decode(v)
}
