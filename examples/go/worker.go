package main

import (
	"encoding/json"
	"net/http"
	"strings"

	astack "github.com/astack-dev/astack/bindings/go"
)

// Worker is a media worker node: clients connect to it with the session token the control
// plane gave them; it verifies the token (its own node id is the audience), reports the
// connect, serves the session, and reports the end.
type Worker struct {
	Engine *astack.Engine
	NodeID string
	// Key is the worker's API key (workers:write); each report is authorized with it.
	Key string
}

// Joined is what the worker tells a client that connected.
type Joined struct {
	SessionID string   `json:"session_id"`
	Status    string   `json:"status"`
	EndUserID string   `json:"end_user_id"`
	Features  []string `json:"features"`
	Quality   string   `json:"quality"`
}

// Connect verifies a client's session token and reports the connect: the session becomes
// ACTIVE. A bad token is astack.ErrInvalidToken with its Reason.
func (w *Worker) Connect(token string) (*Joined, error) {
	claims, err := w.Engine.VerifyToken(token, w.NodeID, "")
	if err != nil {
		return nil, err
	}
	d, err := w.Engine.Authorize(w.Key, astack.OpWorkerWrite)
	if err != nil {
		return nil, err
	}
	s, err := w.Engine.ConnectSession(d.KeyID, claims.Sub, token)
	if err != nil {
		return nil, err
	}
	return &Joined{SessionID: s.ID, Status: s.Status, EndUserID: claims.UID, Features: claims.Features, Quality: claims.Quality}, nil
}

// End reports the end of a session: outcome "completed" or "failed" (with a reason).
func (w *Worker) End(sessionID, outcome, reason string) (*astack.Session, error) {
	d, err := w.Engine.Authorize(w.Key, astack.OpWorkerWrite)
	if err != nil {
		return nil, err
	}
	return w.Engine.EndSession(d.KeyID, sessionID, astack.EndSessionRequest{Outcome: outcome, Reason: reason})
}

// Handler serves the worker's endpoints:
//
//	POST /join                     Authorization: Bearer <session token>  → 200 Joined
//	POST /sessions/{id}/leave      {"outcome": "completed"|"failed", "reason": "..."}
//
// Errors are the SPEC's JSON bodies.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /join", func(rw http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			astack.WriteError(rw, &astack.Error{Code: "invalid_token", Status: 401, Message: "no session token", Reason: "malformed",
				Details: map[string]any{"reason": "malformed"}})
			return
		}
		joined, err := w.Connect(token)
		if err != nil {
			astack.WriteError(rw, err)
			return
		}
		writeJSON(rw, joined)
	})
	mux.HandleFunc("POST /sessions/{id}/leave", func(rw http.ResponseWriter, r *http.Request) {
		var req astack.EndSessionRequest
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 64<<10)).Decode(&req); err != nil {
			astack.WriteError(rw, &astack.Error{Code: "invalid_request", Status: 400, Message: "malformed JSON"})
			return
		}
		if req.Outcome == "" {
			req.Outcome = astack.OutcomeCompleted
		}
		s, err := w.End(r.PathValue("id"), req.Outcome, req.Reason)
		if err != nil {
			astack.WriteError(rw, err)
			return
		}
		writeJSON(rw, s)
	})
	return mux
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}
