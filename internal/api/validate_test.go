package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

func TestValidateReport(t *testing.T) {
	proxy := func() cluster.Report {
		return cluster.Report{From: "px1", Proxy: &cluster.ProxyReport{Node: "px1", Healthy: true, Probes: []cluster.ProbeResult{{Node: "db1", Reachable: true}}}}
	}
	cases := []struct {
		name string
		mut  func(*cluster.Report)
		base func() cluster.Report
		want []string // substrings; nil = valid
	}{
		{"valid db", func(*cluster.Report) {}, validReport, nil},
		{"valid proxy", func(*cluster.Report) {}, proxy, nil},
		{"unreachable db without wsrep", func(r *cluster.Report) {
			r.DB.Reachable, r.DB.Wsrep, r.DB.Health = false, nil, cluster.HealthUnreachable
		}, validReport, nil},
		{"empty from", func(r *cluster.Report) { r.From = "" }, validReport, []string{"empty from", "differs"}},
		{"no health", func(r *cluster.Report) { r.DB.Health = "" }, validReport, []string{"db.health is empty"}},
		{"negative streak", func(r *cluster.Report) { r.DB.Streak = -1 }, validReport, []string{"negative"}},
		{"reachable without wsrep", func(r *cluster.Report) { r.DB.Wsrep = nil }, validReport, []string{"db.wsrep is missing"}},
		{"proxy node mismatch", func(r *cluster.Report) { r.Proxy.Node = "px2" }, proxy, []string{`proxy.node "px2"`}},
		{"probe without node", func(r *cluster.Report) { r.Proxy.Probes = append(r.Proxy.Probes, cluster.ProbeResult{}) }, proxy, []string{"probes[1]"}},
		{"both", func(r *cluster.Report) { r.Proxy = &cluster.ProxyReport{Node: "db2"} }, validReport, []string{"both db and proxy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.base()
			c.mut(&r)
			err := api.ValidateReport(r)
			if c.want == nil {
				if err != nil {
					t.Fatalf("ValidateReport: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("ValidateReport: %v, want an ErrBadRequest", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
