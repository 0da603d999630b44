package proxysqltest

import "strings"

// The table definitions below are copied byte for byte from the captured
// ProxySQL 2.7.2 reference (proxysql-2.7.2-admin-reference.md, section 1):
// the `sql` column of sqlite_master. Tables whose reference row says
// "identical to X with the table name replaced" are derived from X by
// renameTable. SQLite keeps the text as given (minus a schema qualifier), so
// `SELECT sql FROM sqlite_master` answers what ProxySQL answers.
const (
	ddlGlobalVariables               = `CREATE TABLE global_variables (variable_name VARCHAR NOT NULL PRIMARY KEY , variable_value VARCHAR NOT NULL)`
	ddlMySQLGaleraHostgroups         = `CREATE TABLE mysql_galera_hostgroups (writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , backup_writer_hostgroup INT CHECK (backup_writer_hostgroup>=0 AND backup_writer_hostgroup<>writer_hostgroup) NOT NULL , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND backup_writer_hostgroup<>reader_hostgroup AND reader_hostgroup>0) , offline_hostgroup INT NOT NULL CHECK (offline_hostgroup<>writer_hostgroup AND offline_hostgroup<>reader_hostgroup AND backup_writer_hostgroup<>offline_hostgroup AND offline_hostgroup>=0) , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 1 , max_writers INT NOT NULL CHECK (max_writers >= 0) DEFAULT 1 , writer_is_also_reader INT CHECK (writer_is_also_reader IN (0,1,2)) NOT NULL DEFAULT 0 , max_transactions_behind INT CHECK (max_transactions_behind>=0) NOT NULL DEFAULT 0 , comment VARCHAR , UNIQUE (reader_hostgroup) , UNIQUE (offline_hostgroup) , UNIQUE (backup_writer_hostgroup))`
	ddlMySQLReplicationHostgroups    = `CREATE TABLE mysql_replication_hostgroups (writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND reader_hostgroup>=0) , check_type VARCHAR CHECK (LOWER(check_type) IN ('read_only','innodb_read_only','super_read_only','read_only|innodb_read_only','read_only&innodb_read_only')) NOT NULL DEFAULT 'read_only' , comment VARCHAR NOT NULL DEFAULT '', UNIQUE (reader_hostgroup))`
	ddlMySQLServers                  = `CREATE TABLE mysql_servers (hostgroup_id INT CHECK (hostgroup_id>=0) NOT NULL DEFAULT 0 , hostname VARCHAR NOT NULL , port INT CHECK (port >= 0 AND port <= 65535) NOT NULL DEFAULT 3306 , gtid_port INT CHECK ((gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535) NOT NULL DEFAULT 0 , status VARCHAR CHECK (UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')) NOT NULL DEFAULT 'ONLINE' , weight INT CHECK (weight >= 0 AND weight <=10000000) NOT NULL DEFAULT 1 , compression INT CHECK (compression IN(0,1)) NOT NULL DEFAULT 0 , max_connections INT CHECK (max_connections >=0) NOT NULL DEFAULT 1000 , max_replication_lag INT CHECK (max_replication_lag >= 0 AND max_replication_lag <= 126144000) NOT NULL DEFAULT 0 , use_ssl INT CHECK (use_ssl IN(0,1)) NOT NULL DEFAULT 0 , max_latency_ms INT UNSIGNED CHECK (max_latency_ms>=0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup_id, hostname, port) )`
	ddlProxySQLServers               = `CREATE TABLE proxysql_servers (hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 6032 , weight INT CHECK (weight >= 0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostname, port) )`
	ddlRuntimeChecksumsValues        = `CREATE TABLE runtime_checksums_values (name VARCHAR NOT NULL , version INT NOT NULL , epoch INT NOT NULL , checksum VARCHAR NOT NULL , PRIMARY KEY (name))`
	ddlRuntimeMySQLServers           = `CREATE TABLE runtime_mysql_servers (hostgroup_id INT CHECK (hostgroup_id>=0) NOT NULL DEFAULT 0 , hostname VARCHAR NOT NULL , port INT CHECK (port >= 0 AND port <= 65535) NOT NULL DEFAULT 3306 , gtid_port INT CHECK ((gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535) NOT NULL DEFAULT 0 , status VARCHAR CHECK (UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')) NOT NULL DEFAULT 'ONLINE' , weight INT CHECK (weight >= 0 AND weight <=10000000) NOT NULL DEFAULT 1 , compression INT CHECK (compression IN(0,1)) NOT NULL DEFAULT 0 , max_connections INT CHECK (max_connections >=0) NOT NULL DEFAULT 1000 , max_replication_lag INT CHECK (max_replication_lag >= 0 AND max_replication_lag <= 126144000) NOT NULL DEFAULT 0 , use_ssl INT CHECK (use_ssl IN(0,1)) NOT NULL DEFAULT 0 , max_latency_ms INT UNSIGNED CHECK (max_latency_ms>=0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup_id, hostname, port) )`
	ddlStatsMySQLConnectionPool      = `CREATE TABLE stats_mysql_connection_pool (hostgroup INT , srv_host VARCHAR , srv_port INT , status VARCHAR , ConnUsed INT , ConnFree INT , ConnOK INT , ConnERR INT , MaxConnUsed INT , Queries INT , Queries_GTID_sync INT , Bytes_data_sent INT , Bytes_data_recv INT , Latency_us INT)`
	ddlStatsMySQLConnectionPoolReset = `CREATE TABLE stats_mysql_connection_pool_reset (hostgroup INT , srv_host VARCHAR , srv_port INT , status VARCHAR , ConnUsed INT , ConnFree INT , ConnOK INT , ConnERR INT , MaxConnUsed INT , Queries INT , Queries_GTID_sync INT , Bytes_data_sent INT , Bytes_data_recv INT , Latency_us INT)`
	ddlMonitorConnectLog             = `CREATE TABLE mysql_server_connect_log (hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , connect_success_time_us INT DEFAULT 0 , connect_error VARCHAR , PRIMARY KEY (hostname, port, time_start_us))`
	ddlMonitorGaleraLog              = `CREATE TABLE mysql_server_galera_log (hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , success_time_us INT DEFAULT 0 , primary_partition VARCHAR NOT NULL DEFAULT 'NO' , read_only VARCHAR NOT NULL DEFAULT 'YES' , wsrep_local_recv_queue INT DEFAULT 0 , wsrep_local_state INT DEFAULT 0 , wsrep_desync VARCHAR NOT NULL DEFAULT 'NO' , wsrep_reject_queries VARCHAR NOT NULL DEFAULT 'NO' , wsrep_sst_donor_rejects_queries VARCHAR NOT NULL DEFAULT 'NO' , pxc_maint_mode VARCHAR NOT NULL DEFAULT 'NO' , error VARCHAR , PRIMARY KEY (hostname, port, time_start_us))`
	ddlMonitorPingLog                = `CREATE TABLE mysql_server_ping_log ( hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , ping_success_time_us INT DEFAULT 0 , ping_error VARCHAR , PRIMARY KEY (hostname, port, time_start_us))`
)

// renameTable derives the definition of a table that the reference lists as
// "identical to from with the table name replaced".
func renameTable(ddl, from, to string) string {
	return strings.Replace(ddl, "CREATE TABLE "+from+" ", "CREATE TABLE "+to+" ", 1)
}

// inSchema turns "CREATE TABLE t ..." into "CREATE TABLE schema.t ...".
// SQLite drops the qualifier again when it stores the text in sqlite_master.
func inSchema(ddl, schema string) string {
	return strings.Replace(ddl, "CREATE TABLE ", "CREATE TABLE "+schema+".", 1)
}

// schemaTables lists, per attached schema, the tables the stand-in creates,
// in creation order.
func schemaTables() map[string][]string {
	galera := ddlMySQLGaleraHostgroups
	groupRepl := renameTable(galera, "mysql_galera_hostgroups", "mysql_group_replication_hostgroups")
	repl := ddlMySQLReplicationHostgroups
	config := []string{
		ddlGlobalVariables,
		galera,
		groupRepl,
		repl,
		ddlMySQLServers,
		ddlProxySQLServers,
	}
	main := append([]string{}, config...)
	main = append(main,
		ddlRuntimeChecksumsValues,
		renameTable(ddlGlobalVariables, "global_variables", "runtime_global_variables"),
		renameTable(galera, "mysql_galera_hostgroups", "runtime_mysql_galera_hostgroups"),
		renameTable(groupRepl, "mysql_group_replication_hostgroups", "runtime_mysql_group_replication_hostgroups"),
		renameTable(repl, "mysql_replication_hostgroups", "runtime_mysql_replication_hostgroups"),
		ddlRuntimeMySQLServers,
		renameTable(ddlProxySQLServers, "proxysql_servers", "runtime_proxysql_servers"),
	)
	return map[string][]string{
		"main":    main,
		"disk":    config,
		"stats":   {ddlGlobalVariables, ddlStatsMySQLConnectionPool, ddlStatsMySQLConnectionPoolReset},
		"monitor": {ddlMonitorConnectLog, ddlMonitorGaleraLog, ddlMonitorPingLog},
	}
}

// referenceVersion is admin-version of the captured instance.
const referenceVersion = "2.7.2-14-g5cc418b"

// defaultVariables seeds global_variables with the values section 4 of the
// reference shows for a fresh datadir (the subset the reference lists; real
// ProxySQL has 212 rows). admin-admin_credentials and admin-mysql_ifaces are
// filled in from the stand-in's own credentials and address.
func defaultVariables(credentials, ifaces string) [][2]string {
	return [][2]string{
		{"admin-admin_credentials", credentials},
		{"admin-cluster_admin_variables_diffs_before_sync", "3"},
		{"admin-cluster_admin_variables_save_to_disk", "true"},
		{"admin-cluster_check_interval_ms", "1000"},
		{"admin-cluster_check_status_frequency", "10"},
		{"admin-cluster_ldap_variables_diffs_before_sync", "3"},
		{"admin-cluster_ldap_variables_save_to_disk", "true"},
		{"admin-cluster_mysql_query_rules_diffs_before_sync", "3"},
		{"admin-cluster_mysql_query_rules_save_to_disk", "true"},
		{"admin-cluster_mysql_servers_diffs_before_sync", "3"},
		{"admin-cluster_mysql_servers_save_to_disk", "true"},
		{"admin-cluster_mysql_servers_sync_algorithm", "1"},
		{"admin-cluster_mysql_users_diffs_before_sync", "3"},
		{"admin-cluster_mysql_users_save_to_disk", "true"},
		{"admin-cluster_mysql_variables_diffs_before_sync", "3"},
		{"admin-cluster_mysql_variables_save_to_disk", "true"},
		{"admin-cluster_password", ""},
		{"admin-cluster_proxysql_servers_diffs_before_sync", "3"},
		{"admin-cluster_proxysql_servers_save_to_disk", "true"},
		{"admin-cluster_username", ""},
		{"admin-mysql_ifaces", ifaces},
		{"admin-refresh_interval", "2000"},
		{"admin-stats_credentials", "stats:stats"},
		{"admin-version", referenceVersion},
		{"mysql-connect_retries_on_failure", "10"},
		{"mysql-connect_timeout_server", "1000"},
		{"mysql-connection_max_age_ms", "0"},
		{"mysql-default_query_timeout", "86400000"},
		{"mysql-free_connections_pct", "10"},
		{"mysql-hostgroup_manager_verbose", "1"},
		{"mysql-interfaces", "127.0.0.1:6033"},
		{"mysql-kill_backend_connection_when_disconnect", "true"},
		{"mysql-max_transaction_time", "14400000"},
		{"mysql-monitor_enabled", "true"},
		{"mysql-monitor_galera_healthcheck_interval", "5000"},
		{"mysql-monitor_galera_healthcheck_max_timeout_count", "3"},
		{"mysql-monitor_galera_healthcheck_timeout", "800"},
		{"mysql-monitor_password", "monitor"},
		{"mysql-monitor_username", "monitor"},
		{"mysql-monitor_writer_is_also_reader", "true"},
		{"mysql-ping_interval_server_msec", "10000"},
		{"mysql-server_version", "8.0.11"},
		{"mysql-set_query_lock_on_hostgroup", "1"},
		{"mysql-shun_on_failures", "5"},
		{"mysql-shun_recovery_time_sec", "10"},
		{"mysql-threads", "4"},
		{"mysql-wait_timeout", "28800000"},
	}
}
