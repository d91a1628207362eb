package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// view says how a command's answer is shown as a table: rows are the
// array under list (or the answer itself when it is an array, or one
// key/value row per field for an object), columns are cols (default:
// every scalar field, sorted).
type view struct {
	list string
	cols []string
}

// printOut writes v (decoded JSON) as JSON or as a table.
func printOut(w io.Writer, format string, v any, vw view) error {
	if format == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	rows, isList := v.([]any)
	if m, ok := v.(map[string]any); ok && vw.list != "" {
		rows, isList = m[vw.list].([]any)
		if !isList {
			rows = []any{}
			isList = true
		}
	}
	if !isList {
		m, ok := v.(map[string]any)
		if !ok {
			_, err := fmt.Fprintln(tw, cell(v))
			return err
		}
		keys := vw.cols
		if keys == nil {
			keys = sortedKeys(m)
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(m[k]))
		}
		return nil
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(tw, "(none)")
		return err
	}
	cols := vw.cols
	if cols == nil {
		seen := map[string]bool{}
		for _, r := range rows {
			if m, ok := r.(map[string]any); ok {
				for k, v := range m {
					if scalar(v) && !seen[k] {
						seen[k] = true
						cols = append(cols, k)
					}
				}
			}
		}
		sort.Strings(cols)
	}
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		m, _ := r.(map[string]any)
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = cell(m[c])
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func scalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// cell is one value in a table: scalars as they are, nested values as
// compact JSON (cut short).
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return strings.ReplaceAll(x, "\n", " ")
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
