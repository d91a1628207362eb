// Package audit is the platform's append-only, hash-chained audit log
// (OP-4, VA-9, SE-5). Every service keeps its own chain in its own schema
// (table audit_log, a platform migration); an entry is written in the same
// transaction as the action it records, so an action without its entry —
// or an entry without its action — cannot commit.
//
// Each entry's hash is SHA-256 over its sequence number, time, actor,
// action, subject, details and the previous entry's hash. Editing a row
// breaks its own hash; deleting or reordering rows breaks the link of the
// next one. Appends are serialised per schema by a transaction-scoped
// advisory lock: the chain has one writer at a time, and the lock is held
// only until the recording transaction ends.
//
// What a chain alone cannot show is the removal of its newest entries;
// Verify returns the head (sequence and hash) so that it can be compared
// with a copy kept elsewhere.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
)

// System is the actor of actions nobody asked for (timers, consumers).
const System = "system"

// Entry is one audited action.
type Entry struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`   // "ops:<fingerprint>", "applicant:<id>", "system", …
	Action  string          `json:"action"`  // "certificate.issued", "review.approved", …
	Subject string          `json:"subject"` // the aggregate acted on, e.g. an application ID
	Details json.RawMessage `json:"details"`
	Prev    string          `json:"prev_hash"` // hex
	Hash    string          `json:"hash"`      // hex
}

// Record appends an entry inside tx. details is marshalled to JSON (nil
// = {}); it must hold no secret.
func Record(ctx context.Context, tx pgx.Tx, at time.Time, actor, action, subject string, details any) error {
	if actor == "" {
		actor = System
	}
	raw := []byte("{}")
	if details != nil {
		var err error
		if raw, err = json.Marshal(details); err != nil {
			return fmt.Errorf("audit: details: %w", err)
		}
		raw, err = canonical(raw)
		if err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit_log'))`); err != nil {
		return fmt.Errorf("audit: lock: %w", err)
	}
	var seq int64
	prev := make([]byte, sha256.Size)
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("audit: head: %w", err)
	}
	seq++
	// Microseconds: what Postgres keeps, so the hash verifies after a round trip.
	at = at.UTC().Truncate(time.Microsecond)
	h := hash(seq, at, actor, action, subject, raw, prev)
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, seq, at, actor, action, subject, raw, prev, h)
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// canonical re-encodes JSON the way jsonb returns it is not guaranteed to
// match byte for byte; hashing a canonical form (Go's encoding of the
// decoded value: sorted keys, no spaces) makes the hash independent of it.
func canonical(raw []byte) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit: details: %w", err)
	}
	return json.Marshal(v)
}

func hash(seq int64, at time.Time, actor, action, subject string, details, prev []byte) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(at.UnixMicro()))
	h.Write(n[:])
	for _, s := range [][]byte{[]byte(actor), []byte(action), []byte(subject), details, prev} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write(s)
	}
	return h.Sum(nil)
}

// Filter selects entries for List.
type Filter struct {
	Action  string // exact action, or a prefix ending in "." ("review.")
	Actor   string
	Subject string
	Since   time.Time // at >= Since
	Until   time.Time // at < Until
	After   int64     // seq > After (paging)
	Limit   int       // default 100, at most 1000
}

// List returns entries in chain order.
func List(ctx context.Context, q db.Querier, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := q.Query(ctx, `SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
		WHERE seq > $1
		  AND ($2 = '' OR action = $2 OR (right($2, 1) = '.' AND starts_with(action, $2)))
		  AND ($3 = '' OR actor = $3)
		  AND ($4 = '' OR subject = $4)
		  AND ($5::timestamptz IS NULL OR at >= $5)
		  AND ($6::timestamptz IS NULL OR at < $6)
		ORDER BY seq LIMIT $7`, f.After, f.Action, f.Actor, f.Subject, since, until, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEntry)
}

func scanEntry(row pgx.CollectableRow) (Entry, error) {
	var e Entry
	var details, prev, h []byte
	if err := row.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.Subject, &details, &prev, &h); err != nil {
		return e, err
	}
	e.Details = details
	e.Prev, e.Hash = hex.EncodeToString(prev), hex.EncodeToString(h)
	return e, nil
}

// Report is the outcome of Verify.
type Report struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	HeadSeq int64  `json:"head_seq"`
	Head    string `json:"head_hash,omitempty"`
	// The first broken entry, when !OK.
	BrokenSeq int64  `json:"broken_seq,omitempty"`
	Problem   string `json:"problem,omitempty"`
}

// Verify walks the whole chain in order and reports the first entry that
// was edited (its hash does not match its content), or that follows a
// deleted or reordered one (its link does not match its predecessor).
func Verify(ctx context.Context, q db.Querier) (Report, error) {
	rows, err := q.Query(ctx, `SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return Report{}, err
	}
	defer rows.Close()
	rep := Report{OK: true}
	prev := make([]byte, sha256.Size)
	var lastSeq int64
	for rows.Next() {
		var (
			seq                           int64
			at                            time.Time
			actor, action, subject        string
			details, prevHash, storedHash []byte
		)
		if err := rows.Scan(&seq, &at, &actor, &action, &subject, &details, &prevHash, &storedHash); err != nil {
			return Report{}, err
		}
		rep.Entries++
		fail := func(problem string) {
			if rep.OK {
				rep.OK, rep.BrokenSeq, rep.Problem = false, seq, problem
			}
		}
		canon, cerr := canonical(details)
		switch {
		case cerr != nil:
			fail("details are not valid JSON")
		case seq != lastSeq+1:
			fail(fmt.Sprintf("sequence jumps from %d to %d: entries were deleted", lastSeq, seq))
		case !bytes.Equal(prevHash, prev):
			fail(fmt.Sprintf("entry %d does not follow entry %d: an entry before it was deleted, reordered or edited", seq, lastSeq))
		case !bytes.Equal(hash(seq, at.UTC(), actor, action, subject, canon, prevHash), storedHash):
			fail(fmt.Sprintf("entry %d was edited: its content does not match its hash", seq))
		}
		prev, lastSeq = storedHash, seq
		rep.HeadSeq, rep.Head = seq, hex.EncodeToString(storedHash)
	}
	return rep, rows.Err()
}
