package proxysqltest

import (
	"context"
	"fmt"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Query runs one statement as an admin session would, without logging it
// and without fault injection, and returns its rows as text (NULL as "").
// Tests use it to read runtime tables without a MySQL client, e.g. from a
// process outside the network namespace the stand-in listens in.
func (s *Server) Query(stmt string) ([][]string, error) {
	s.mu.Lock()
	res, err := s.runLocked(context.Background(), &session{s: s, user: s.opts.user, host: "127.0.0.1"}, stmt)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if res == nil || res.Resultset == nil {
		return nil, nil
	}
	cols := len(res.Resultset.Fields)
	out := make([][]string, 0, len(res.Resultset.RowDatas))
	for _, raw := range res.Resultset.RowDatas {
		row := make([]string, 0, cols)
		b := []byte(raw)
		for range cols {
			v, _, n, err := gmysql.LengthEncodedString(b)
			if err != nil {
				return nil, fmt.Errorf("proxysqltest: query %q: decode row: %w", stmt, err)
			}
			row = append(row, string(v))
			b = b[n:]
		}
		out = append(out, row)
	}
	return out, nil
}
