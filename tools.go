//go:build tools

// This file pins the project's dependencies while the packages that use them
// are being written. It is never built.
package tools

import (
	_ "github.com/go-mysql-org/go-mysql/server"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/mdlayher/arp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/vishvananda/netlink"
	_ "go.uber.org/goleak"
	_ "modernc.org/sqlite"
	_ "pgregory.net/rapid"
)
