package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	astack "github.com/astack-dev/astack/bindings/go"
)

// The demo flow end to end: session created, client joins the worker over HTTP with its
// token, the worker reports connect and end.
func TestDemo(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	worker, appKey, err := Setup("gpu-1", "http://"+srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Engine.Close()
	srv.Config.Handler = worker.Handler()
	srv.Start()
	defer srv.Close()
	if err := Demo(worker.Engine, appKey, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerRefusesBadTokens(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	worker, appKey, err := Setup("gpu-1", "http://"+srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Engine.Close()
	srv.Config.Handler = worker.Handler()
	srv.Start()
	defer srv.Close()

	d, _ := worker.Engine.Authorize(appKey, astack.OpSessionCreate)
	s, err := worker.Engine.CreateSession(d.KeyID, astack.CreateSessionRequest{EndUserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	join := func(auth string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/join", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Error struct{ Code, Reason string }
		}
		raw, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(raw, &body)
		return res.StatusCode, body.Error.Code + "/" + body.Error.Reason
	}
	if status, code := join(""); status != 401 || code != "invalid_token/malformed" {
		t.Fatalf("%d %s", status, code)
	}
	tampered := s.SessionToken[:len(s.SessionToken)-3] + "abc"
	if status, code := join("Bearer " + tampered); status != 401 || code != "invalid_token/bad_signature" {
		t.Fatalf("%d %s", status, code)
	}
	// A token for another worker's node is refused by this one.
	other := &Worker{Engine: worker.Engine, NodeID: "gpu-2", Key: worker.Key}
	if _, err := other.Connect(s.SessionToken); !errors.Is(err, astack.ErrInvalidToken) {
		t.Fatalf("gpu-2 accepted gpu-1's token: %v", err)
	}
	if status, code := join("Bearer " + s.SessionToken); status != 200 {
		t.Fatalf("%d %s", status, code)
	}
	// Joining twice is an invalid transition.
	if status, code := join("Bearer " + s.SessionToken); status != 409 || !strings.HasPrefix(code, "invalid_transition") {
		t.Fatalf("%d %s", status, code)
	}
	// Ending an unknown session is not found.
	if _, err := worker.End("sess_nope", "completed", ""); !errors.Is(err, astack.ErrNotFound) {
		t.Fatalf("%v", err)
	}
	if ended, err := worker.End(s.ID, "failed", "gpu fault"); err != nil || ended.Status != astack.StatusFailed {
		t.Fatalf("%v %v", ended, err)
	}
}
