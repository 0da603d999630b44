package planner

import (
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

func okFacts(place placement, streak int) facts {
	r := dbReport("db1", cluster.HealthOK, streak, 100, start())
	return facts{Node: "db1", Member: dbMember("db1", 0), Policy: DefaultPolicy(), Obs: r.Report.DB, Place: place, Observers: 2}
}

func badFacts(h cluster.Health, streak int, place placement) facts {
	f := okFacts(place, 1)
	f.Obs = dbReport("db1", h, streak, 100, start()).Report.DB
	return f
}

func silentFacts(place placement, unreachable, observers int) facts {
	f := okFacts(place, 1)
	f.Obs, f.Age, f.Unreachable, f.Observers = nil, 2*time.Second, unreachable, observers
	return f
}

// TestVerdictTableRows checks each row of the table with facts that should
// hit it, and the outcome it gives.
func TestVerdictTableRows(t *testing.T) {
	with := func(f facts, m func(*facts)) facts { m(&f); return f }
	tests := []struct {
		code  code
		facts facts
		want  outcome
	}{
		{codeMaintenance, with(okFacts(placeWriter, 9), func(f *facts) { f.Member.Maintenance, f.Member.Draining = true, true }),
			offline(cluster.ReasonMaintenance)},
		{codeDraining, with(okFacts(placeReader, 9), func(f *facts) { f.Member.Draining, f.GrantDonor = true, true }),
			offline(cluster.ReasonDraining)},
		{codeGrantDonor, with(okFacts(placeReader, 9), func(f *facts) { f.GrantDonor = true }),
			offline(cluster.ReasonDonor)},
		{codeGrantJoiner, with(badFacts(cluster.HealthJoining, 1, placeAbsent), func(f *facts) { f.GrantJoiner = true }),
			offline(cluster.ReasonJoining)},
		{codeDonor, badFacts(cluster.HealthDonor, 1, placeReader), failedOffline(cluster.ReasonDonor)},
		{codeJoining, badFacts(cluster.HealthJoining, 1, placeReader), failedOffline(cluster.ReasonJoining)},
		{codeContradiction, with(okFacts(placeWriter, 9), func(f *facts) { f.Obs.Wsrep.LocalState = cluster.WsrepJoined }),
			failedOffline(cluster.ReasonNotSynced)},
		{codeFailed, badFacts(cluster.HealthUnreachable, 3, placeWriter), failedOffline(cluster.ReasonUnreachable)},
		{codeSuspect, badFacts(cluster.HealthUnreachable, 2, placeWriter),
			outcome{Serve: true, KeepWriter: true, Fenceable: true}},
		{codeSuspect, badFacts(cluster.HealthDesynced, 1, placeAbsent), failedOffline(cluster.ReasonDesynced)},
		{codeSilentUnreachable, silentFacts(placeWriter, 2, 3), failedOffline(cluster.ReasonUnreachable)},
		{codeSilentKept, silentFacts(placeWriter, 1, 2), outcome{Serve: true, KeepWriter: true, Fenceable: true}},
		{codeSilentKept, with(silentFacts(placeOffline, 0, 0), func(f *facts) { f.CurReason = cluster.ReasonFenced }),
			failedOffline(cluster.ReasonFenced)},
		{codeSilentUnknown, silentFacts(placeAbsent, 0, 2), offline(cluster.ReasonUnknown)},
		{codeRecovering, okFacts(placeOffline, 2), offline(cluster.ReasonRecovering)},
		{codeRecovering, okFacts(placeAbsent, 2), offline(cluster.ReasonRecovering)},
		{codeRecovered, okFacts(placeOffline, 3), outcome{Serve: true}},
		{codeHealthy, okFacts(placeAbsent, 3), outcome{Serve: true, KeepWriter: true, Electable: true}},
		{codeHealthy, okFacts(placeReader, 1), outcome{Serve: true, KeepWriter: true, Electable: true}},
		{codeHealthy, with(okFacts(placeReader, 1), func(f *facts) { f.GrantJoiner = true }),
			outcome{Serve: true, KeepWriter: true, Electable: true}},
	}
	covered := map[code]bool{}
	for _, tc := range tests {
		covered[tc.code] = true
		t.Run(string(tc.code), func(t *testing.T) {
			v := classify(tc.facts)
			if v.Code != tc.code {
				t.Fatalf("code = %s (%s), want %s", v.Code, v.Why, tc.code)
			}
			if v.Out != tc.want {
				t.Fatalf("outcome = %+v, want %+v", v.Out, tc.want)
			}
			if v.Why == "" {
				t.Error("empty explanation")
			}
		})
	}
	for _, r := range verdictTable() {
		if !covered[r.Code] {
			t.Errorf("row %s has no test", r.Code)
		}
	}
}

func TestVerdictTableShape(t *testing.T) {
	rows := verdictTable()
	seen := map[int]code{}
	codes := map[code]bool{}
	for i, r := range rows {
		if prev, dup := seen[r.Priority]; dup {
			t.Errorf("rows %s and %s share priority %d", prev, r.Code, r.Priority)
		}
		seen[r.Priority] = r.Code
		if codes[r.Code] {
			t.Errorf("code %s appears twice", r.Code)
		}
		codes[r.Code] = true
		if i > 0 && rows[i-1].Priority >= r.Priority {
			t.Errorf("row %s is out of priority order", r.Code)
		}
		if r.Match == nil || r.Outcome == nil || r.Explain == nil {
			t.Errorf("row %s is incomplete", r.Code)
		}
	}
}

func TestReasonForMapsEveryHealth(t *testing.T) {
	want := map[cluster.Health]cluster.OfflineReason{
		cluster.HealthDonor: cluster.ReasonDonor, cluster.HealthJoining: cluster.ReasonJoining,
		cluster.HealthDesynced: cluster.ReasonDesynced, cluster.HealthNonPrimary: cluster.ReasonNonPrimary,
		cluster.HealthNotReady: cluster.ReasonNotReady, cluster.HealthUnreachable: cluster.ReasonUnreachable,
		cluster.HealthNotSynced: cluster.ReasonNotSynced, "bogus": cluster.ReasonUnknown,
	}
	for h, r := range want {
		if got := reasonFor(h); got != r {
			t.Errorf("reasonFor(%s) = %s, want %s", h, got, r)
		}
	}
}

// TestWsrepProblem checks that the status helper used for the writer
// requirements agrees with the health each fixture is built for.
func TestWsrepProblem(t *testing.T) {
	want := map[cluster.Health]cluster.OfflineReason{
		cluster.HealthOK: "", cluster.HealthUnreachable: cluster.ReasonUnreachable,
		cluster.HealthNonPrimary: cluster.ReasonNonPrimary, cluster.HealthNotReady: cluster.ReasonNotReady,
		cluster.HealthDonor: cluster.ReasonDesynced, cluster.HealthDesynced: cluster.ReasonDesynced,
		cluster.HealthJoining: cluster.ReasonJoining, cluster.HealthNotSynced: cluster.ReasonNotSynced,
	}
	for h, r := range want {
		obs := dbReport("db1", h, 1, 1, start()).Report.DB
		if got := wsrepProblem(obs); got != r {
			t.Errorf("wsrepProblem(%s) = %q, want %q", h, got, r)
		}
	}
}
