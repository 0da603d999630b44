package planner

import (
	"testing"

	"github.com/dbha/dbha/internal/cluster"
)

func TestPlaceLeader(t *testing.T) {
	st := cluster.NewState()
	for _, m := range []cluster.Member{
		{Name: "db1", Roles: []cluster.Role{cluster.RoleDB}},
		{Name: "db2", Roles: []cluster.Role{cluster.RoleDB}},
		{Name: "px1", Roles: []cluster.Role{cluster.RoleProxy}},
		{Name: "px2", Roles: []cluster.Role{cluster.RoleProxy}},
	} {
		st.Members[m.Name] = m
	}
	st.Topology.Writer = "db1"
	st.VIP.Owner = "px1"
	all := []cluster.NodeName{"db1", "db2", "px1", "px2"}
	cases := []struct {
		name       string
		self       cluster.NodeName
		candidates []cluster.NodeName
		want       cluster.NodeName
		move       bool
	}{
		{"writer's node moves to the proxy without the VIP", "db1", all, "px2", true},
		{"VIP owner's node moves to the other proxy", "px1", all, "px2", true},
		{"a free proxy stays", "px2", all, "", false},
		{"a non-writer DB node stays", "db2", all, "", false},
		{"no free proxy: a non-writer DB node", "db1", []cluster.NodeName{"db1", "db2", "px1"}, "db2", true},
		{"nobody fit: stay", "db1", []cluster.NodeName{"db1", "px1"}, "", false},
		{"unknown candidates are ignored", "db1", []cluster.NodeName{"zz9"}, "", false},
	}
	for _, c := range cases {
		got, move := PlaceLeader(st, c.self, c.candidates)
		if got != c.want || move != c.move {
			t.Errorf("%s: got %q,%v; want %q,%v", c.name, got, move, c.want, c.move)
		}
	}
}
