package store

import "context"

// CountByStatus counts the applications in each status, each count
// stopping at limit so that the query stays bounded however many
// applications a status holds (an index-only scan on applications_status).
func CountByStatus(ctx context.Context, q Q, statuses []string, limit int) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT s.status,
		(SELECT count(*) FROM (SELECT 1 FROM applications a WHERE a.status = s.status LIMIT $2) x)
		FROM unnest($1::text[]) AS s(status)`, statuses, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64, len(statuses))
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
