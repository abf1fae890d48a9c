package writers

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// TestLibreOfficeOpensWorkbook converts the workbook headless with
// LibreOffice (a spreadsheet program other than excelize) to one CSV per
// sheet, values as displayed, and compares every cell with what excelize
// reads back. It runs when soffice is on PATH and is skipped otherwise (and
// under -short); under CI=true a missing soffice fails it (.ci/run installs
// it). Install: apt-get install -y libreoffice-calc-nogui.
func TestLibreOfficeOpensWorkbook(t *testing.T) {
	soffice := needSoffice(t)
	rep, _, _, _ := fixtureReport(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MaxRowsPerSheet: 10}); err != nil {
		t.Fatal(err)
	}
	out := sofficeCSV(t, soffice, path)
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if want := []string{"Summary", "Exceptions", "Exceptions (2)", "Matched", "Rejected"}; !slices.Equal(sheets, want) {
		t.Fatalf("sheets = %q", sheets)
	}
	for _, sheet := range sheets {
		lo := readCSV(t, filepath.Join(out, "report-"+sheet+".csv"))
		ex, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		if len(lo) != len(ex) {
			t.Errorf("%s: LibreOffice %d rows, excelize %d", sheet, len(lo), len(ex))
			continue
		}
		for i := range ex {
			if a, b := trimRow(lo[i]), trimRow(ex[i]); !slices.Equal(a, b) {
				t.Errorf("%s row %d:\n LibreOffice %q\n excelize    %q", sheet, i+1, a, b)
			}
		}
	}
}

func needSoffice(t *testing.T) string {
	t.Helper()
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("soffice not on PATH under CI=true; .ci/run installs libreoffice-calc-nogui")
		}
		t.Skip("soffice not on PATH; install libreoffice-calc-nogui to run this check")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	if raceEnabled {
		t.Skip("-race: checked in the plain pass")
	}
	return soffice
}

// sofficeCSV converts the workbook at path with LibreOffice, headless, to
// one CSV per sheet (values as shown) in a new directory: <base>-<Sheet>.csv
// (several workbooks in one start of LibreOffice).
// A workbook LibreOffice cannot open (or would have to repair) fails the
// conversion.
func sofficeCSV(t *testing.T, soffice string, paths ...string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// CSV filter tokens: ',' '"' UTF-8, from line 1, –, en-US, –, –,
	// save as shown, no formulas, –, all sheets (-1) into report-<Sheet>.csv.
	cmd := exec.CommandContext(ctx, soffice, "--headless", "--norestore",
		"-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,1033,false,true,true,false,false,-1",
		"--outdir", out)
	cmd.Args = append(cmd.Args, paths...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("soffice: %v\n%s", err, b)
	}
	if ents, _ := os.ReadDir(out); len(ents) == 0 {
		t.Fatalf("soffice wrote nothing for %s:\n%s", paths, b)
	}
	return out
}

// TestLibreOfficeLeanEqualsReference opens the same report written by the
// lean writer and by excelize's StreamWriter (edge-case text and amounts,
// split sheets, a matched-row cap) in LibreOffice and compares every sheet
// as LibreOffice shows it.
func TestLibreOfficeLeanEqualsReference(t *testing.T) {
	soffice := needSoffice(t)
	fix, _, matched, rej := fixtureReport(t)
	dir := t.TempDir()
	write := func(name string, stream bool) string {
		rep := fix
		rep.Exceptions, rep.Matched, rep.Rejected = seqOf(edgeRows(t)), seqOf(matched), seqOf(rej)
		path := filepath.Join(dir, name+".xlsx")
		if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MaxRowsPerSheet: 12, MatchedRows: 2, ExcelizeStream: stream}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out := sofficeCSV(t, soffice, write("lean", false), write("ref", true))
	want := []string{"Summary", "Exceptions", "Exceptions (2)", "Matched", "Rejected"}
	for _, sheet := range want {
		l := readCSV(t, filepath.Join(out, "lean-"+sheet+".csv"))
		r := readCSV(t, filepath.Join(out, "ref-"+sheet+".csv"))
		if len(l) != len(r) || len(r) < 2 {
			t.Errorf("%s: lean %d rows, reference %d", sheet, len(l), len(r))
			continue
		}
		for i := range r {
			if a, b := trimRow(l[i]), trimRow(r[i]); !slices.Equal(a, b) {
				t.Errorf("%s row %d:\n lean      %.300q\n reference %.300q", sheet, i+1, a, b)
			}
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

func trimRow(r []string) []string {
	for len(r) > 0 && r[len(r)-1] == "" {
		r = r[:len(r)-1]
	}
	return r
}
