package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"os"
	"path/filepath"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers"
)

// ExportCSV writes the per-category CSV exports into dir with DuckDB's
// COPY, byte for byte what writers.WriteCSV writes for the same rows (the
// rows never cross into Go; sql/export_csv.sql): "<category>.csv" for every
// category, in paybatch.Categories order (header only when empty), and,
// when rejected is not nil, writers.RejectedCSV. Every file is written
// under a temporary name in dir and put in place (writers.PlaceFile) only
// once all of them are complete. It returns the paths written.
func (r *Reconciler) ExportCSV(ctx context.Context, dir string, rejected iter.Seq2[paybatch.RowError, error]) ([]string, error) {
	ranges, err := r.ensureBuilt(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("csv export: %w", err)
	}
	release, err := r.oneThread(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	byCat := map[paybatch.Category]catRange{}
	for _, cr := range ranges {
		byCat[cr.cat] = cr
	}
	type file struct{ tmp, final string }
	var files []file
	done := false
	defer func() {
		if !done {
			for _, f := range files {
				os.Remove(f.tmp)
			}
		}
	}()
	temp := func(name string) (string, error) {
		f, err := os.CreateTemp(dir, "."+name+".tmp-*")
		if err != nil {
			return "", fmt.Errorf("csv export: %w", err)
		}
		err = f.Chmod(0o644) // as writers' files; DuckDB keeps the mode when it writes over it
		f.Close()
		if err != nil {
			os.Remove(f.Name())
			return "", fmt.Errorf("csv export: %w", err)
		}
		files = append(files, file{f.Name(), filepath.Join(dir, name)})
		return f.Name(), nil
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("csv export: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, query("export_csv_macros")); err != nil {
		return nil, fmt.Errorf("csv export: sql/export_csv_macros.sql: %w", err)
	}
	for _, c := range paybatch.Categories {
		tmp, err := temp(string(c) + ".csv")
		if err != nil {
			return nil, err
		}
		cr, ok := byCat[c]
		if !ok {
			cr = catRange{cat: c, first: 1, last: 0} // header only
		}
		if _, err := conn.ExecContext(ctx, query("export_csv"),
			sql.Named("first", cr.first), sql.Named("last", cr.last), sql.Named("path", tmp)); err != nil {
			return nil, fmt.Errorf("csv export %s: %w", filepath.Join(dir, string(c)+".csv"), err)
		}
	}
	if rejected != nil {
		tmp, err := temp(writers.RejectedCSV)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return nil, fmt.Errorf("csv export: %w", err)
		}
		err = writers.WriteRejectedCSV(f, rejected)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("csv export %s: %w", filepath.Join(dir, writers.RejectedCSV), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Every file is complete: move them all into place.
	var paths []string
	for i, f := range files {
		if err := writers.PlaceFile(f.tmp, f.final); err != nil {
			for _, rest := range files[i+1:] {
				os.Remove(rest.tmp)
			}
			done = true
			return paths, fmt.Errorf("csv export: %w", err)
		}
		paths = append(paths, f.final)
	}
	done = true
	return paths, nil
}
