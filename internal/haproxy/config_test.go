package haproxy

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{Name: "px1", Socket: "/run/haproxy/admin.sock"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.WriterBackend != "dbha_writer" || c.ReaderBackend != "dbha_reader" || c.DialTimeout != DefaultDialTimeout || c.CommandTimeout != DefaultCommandTimeout {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	err := Config{Socket: "relative.sock", WriterBackend: "a b", ReaderBackend: "x", DialTimeout: -1, CommandTimeout: -1}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"name is empty", "not an absolute path", `writer_backend "a b"`, "dial_timeout", "command_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := (Config{Name: "px1", Socket: "/s", WriterBackend: "b", ReaderBackend: "b"}).WithDefaults().Validate(); err == nil {
		t.Error("same writer and reader backend accepted")
	}
	if _, err := New(Config{Name: "px1"}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without socket: got %v, want ErrInvalidConfig", err)
	}
}
