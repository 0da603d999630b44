package haproxy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbha/dbha/internal/haproxy/haproxytest"
)

func sampleTemplate(dir string, health bool) TemplateData {
	return TemplateData{
		SocketPath:      filepath.Join(dir, "admin.sock"),
		ServerStateFile: filepath.Join(dir, "state"),
		BindAddr:        "127.0.0.1",
		WriterPort:      13306,
		ReaderPort:      13307,
		HealthCheck:     health,
		Servers: []TemplateServer{
			{Name: "db1", Host: "127.0.0.1", Port: 3306, CheckPort: 8081},
			{Name: "db2", Host: "::1", Port: 3306, CheckPort: 8082},
		},
	}
}

func TestRenderConfig(t *testing.T) {
	bin := haproxytest.Binary(t)
	for _, health := range []bool{false, true} {
		dir := t.TempDir()
		cfg, err := RenderConfig(sampleTemplate(dir, health))
		if err != nil {
			t.Fatal(err)
		}
		text := string(cfg)
		wantLines := []string{
			"stats socket " + filepath.Join(dir, "admin.sock") + " mode 600 level admin expose-fd listeners",
			"server-state-file " + filepath.Join(dir, "state"),
			"load-server-state-from-file none",
			"bind 127.0.0.1:13306",
			"bind 127.0.0.1:13307",
			"backend dbha_writer",
			"backend dbha_reader",
		}
		if health {
			wantLines = append(wantLines,
				"option httpchk GET /v1/health/writer",
				"option httpchk GET /v1/health/reader",
				"http-check expect status 200",
				"server db1 127.0.0.1:3306 check port 8081 inter 1000ms fall 2 rise 2 disabled on-marked-down shutdown-sessions",
				"server db2 ipv6@::1:3306 check port 8082 inter 1000ms fall 2 rise 2 disabled",
			)
		} else {
			wantLines = append(wantLines,
				"server db1 127.0.0.1:3306 disabled on-marked-down shutdown-sessions",
				"server db2 ipv6@::1:3306 disabled",
			)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(text, "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		for _, w := range wantLines {
			if !lines[w] {
				t.Errorf("health=%v: config lacks line %q:\n%s", health, w, text)
			}
		}
		if !health && strings.Contains(text, "httpchk") {
			t.Errorf("health checks off, but config has httpchk:\n%s", text)
		}
		// Every server line in both backends starts disabled.
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "server ") && !strings.Contains(l, " disabled") {
				t.Errorf("server line not disabled: %q", l)
			}
		}
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("health=%v: haproxy -c: %v\n%s\n%s", health, err, out, text)
		}
	}
}

func TestRenderConfigValidates(t *testing.T) {
	td := TemplateData{
		SocketPath: "relative",
		BindAddr:   "not-an-ip",
		WriterPort: 3306, ReaderPort: 3306,
		HealthCheck: true,
		Servers: []TemplateServer{
			{Name: "db 1", Host: "h", Port: 3306},
			{Name: "db2", Host: "h", Port: 0, CheckPort: 1},
			{Name: "db2", Host: "h", Port: 1, CheckPort: 1},
		},
	}
	_, err := RenderConfig(td)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"socket path", "bind address", "ports are both", `name "db 1"`, "check port", "port 0", "listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if _, err := RenderConfig(TemplateData{SocketPath: "/s"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no servers: got %v, want ErrInvalidConfig", err)
	}
}
