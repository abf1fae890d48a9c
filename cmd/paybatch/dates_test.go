package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
)

// TestDatesInDryRunAndStatus is #16 finding 7's last part: the date
// SmarterPay will collect on (requested on a Saturday, collected on the
// next collectable banking day) appeared in the exports and the report but
// not in `submit --dry-run` nor in `status`. Now the dry run lists the
// date Bacs will use per requested date, flagged when moved, and status
// (text and --json) the date SmarterPay stored.
func TestDatesInDryRunAndStatus(t *testing.T) {
	fixtures := demoFixtures(t)
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 3, Fixtures: fixtures,
		SmarterPay: spsandbox.SandboxConfig{SubmitAfter: 50 * time.Millisecond, SettleAfter: 50 * time.Millisecond}})
	sat := time.Now().UTC().AddDate(0, 1, 0)
	for sat.Weekday() != time.Saturday {
		sat = sat.AddDate(0, 0, 1)
	}
	sat = time.Date(sat.Year(), sat.Month(), sat.Day(), 0, 0, 0, 0, time.UTC)
	cal := smarterpay.NewCalendar()
	wed := cal.NextBankingDay(sat.AddDate(0, 0, 4))
	used, moved, err := cal.Collectable(sat, smarterpay.Today(time.Now()))
	if err != nil || !moved {
		t.Fatalf("Collectable(%s) = %s, %v, %v", sat, used, moved, err)
	}
	day, usedDay, wedDay := sat.Format(time.DateOnly), used.Format(time.DateOnly), wed.Format(time.DateOnly)
	dir := t.TempDir()
	batch := filepath.Join(dir, "dd.csv")
	writeFile(t, batch, "Mandate,Amount,Collection Date,Reference,Description\n"+
		"M0000000000000001,25.32,"+day+",DD-0001,November subscription\n"+
		"M0000000000000001,10.00,"+day+",DD-0002,November subscription\n"+
		"M0000000000000001,12.00,"+wedDay+",DD-0004,November subscription\n")
	vars := map[string]string{"SMARTERPAY_TOKEN": "sp_test_token", "SMARTERPAY_BASE_URL": ts.URL + "/service.svc"}

	out, errs, code := runCLI(t, vars, "submit", "--kind", "dd-payment", "--dry-run", batch)
	if code != exitOK {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"dates Bacs will use",
		"dd-payment requested " + day + " → " + usedDay + "  moved (expected)",
		"dd-payment requested " + wedDay + " → " + wedDay + "  (expected)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}

	// status shows the dates SmarterPay stored, on either journal.
	t.Run("duckdb", func(t *testing.T) {
		statusShowsDates(t, vars, filepath.Join(dir, "journal.duckdb"), batch, day, wedDay)
	})
	t.Run("postgres", func(t *testing.T) { statusShowsDates(t, vars, pgtest.URL(t), batch, day, wedDay) })
}

// statusShowsDates submits batch (two rows asked for day, a Saturday, one
// for wedDay) through journal and checks that status (text and --json)
// shows the dates SmarterPay stored, the Saturday's moved.
func statusShowsDates(t *testing.T, vars map[string]string, journal, batch, day, wedDay string) {
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "dd-payment", "--journal", journal, "--poll-deadline", "30s", batch); code != exitOK && code != exitExceptions {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, _ := runCLI(t, vars, "status", "--journal", journal, "--poll-deadline", "0")
	for _, want := range []string{"Direct Debit dates", "dd-payment requested " + day + " → "} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s\n%s", want, out, errs)
		}
	}
	if strings.Contains(out, "(expected)") {
		t.Errorf("status shows an expected date for rows SmarterPay answered:\n%s", out)
	}
	out, errs, _ = runCLI(t, vars, "status", "--journal", journal, "--poll-deadline", "0", "--json")
	var st struct {
		Dates []struct {
			Kind          string `json:"kind"`
			RequestedDate string `json:"requested_date"`
			Date          string `json:"date"`
			Expected      bool   `json:"expected"`
			Moved         bool   `json:"moved"`
			Rows          int    `json:"rows"`
		} `json:"dates"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errs)
	}
	rows := map[string]int{}
	for _, d := range st.Dates {
		if d.Expected {
			t.Errorf("--json: %+v is expected; SmarterPay answered", d)
		}
		if d.RequestedDate == day && (!d.Moved || d.Date == day || d.Date == "") {
			t.Errorf("--json: Saturday %s not shown moved: %+v", day, d)
		}
		rows[d.RequestedDate] += d.Rows
	}
	if rows[day] != 2 || rows[wedDay] != 1 {
		t.Errorf("--json dates: %+v, want 2 rows asked for %s and 1 for %s", st.Dates, day, wedDay)
	}
}
