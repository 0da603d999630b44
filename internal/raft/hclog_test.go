package raft

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func decodeLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	sl := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	l := newHCLogger(sl, "raft", hclog.Info)

	l.Debug("chatter", "k", 1) // below the adapter's Info floor
	l.Trace("more chatter")
	if l.IsDebug() || !l.IsInfo() || !l.IsError() {
		t.Errorf("IsDebug=%v IsInfo=%v IsError=%v", l.IsDebug(), l.IsInfo(), l.IsError())
	}
	l.Named("net").With("peer", "n2").Warn("failed to contact", "time", 3, "dangling")
	l.Error("boom", "error", "x")
	l.StandardLogger(nil).Print("std line\n")

	lines := decodeLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %s", len(lines), buf.String())
	}
	w := lines[0]
	if w["level"] != "WARN" || w["msg"] != "failed to contact" || w["component"] != "raft.net" ||
		w["peer"] != "n2" || w["time"] != float64(3) || w["dangling"] != "MISSING" {
		t.Errorf("warn line = %v", w)
	}
	if lines[1]["level"] != "ERROR" || lines[1]["error"] != "x" {
		t.Errorf("error line = %v", lines[1])
	}
	if lines[2]["level"] != "INFO" || lines[2]["msg"] != "std line" {
		t.Errorf("std line = %v", lines[2])
	}

	// The level is shared with subloggers, as hclog does by default.
	sub := l.Named("x")
	l.SetLevel(hclog.Error)
	if sub.IsWarn() || sub.GetLevel() != hclog.Error {
		t.Errorf("sublogger level = %v after SetLevel(Error)", sub.GetLevel())
	}
	buf.Reset()
	sub.Warn("hidden")
	l.SetLevel(hclog.Off)
	l.Error("hidden too")
	if buf.Len() != 0 {
		t.Errorf("logged above the level: %s", buf.String())
	}
	if l.ResetNamed("y").Name() != "y" || l.Named("a").Named("b").Name() != "raft.a.b" {
		t.Error("names wrong")
	}
}
