package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
	"github.com/paybatch/paybatch/writers/cardtest"
	"github.com/paybatch/paybatch/writers/smtptest"
)

// knownLeaks are outputs whose card masking belongs to another engineer
// and was not in place when this test was written (issue 16, finding 4). A
// sub-test listed here is skipped, loudly, while it still leaks, and fails
// once it stops leaking, so that the entry is removed.
var knownLeaks = map[string]string{}

// TestRunMasksCardNumbersEverywhere is the scan of issue 16's "Done when": a
// nightly run whose inputs carry card numbers in every free-text field (a
// batch row's terminal, references and amount, a currency, a column the
// reader ignores; the ledger's type and date) leaves no unmasked 13-19 digit
// Luhn-valid number in any output: report, exports of every format,
// stdout/stderr, the log, the e-mail, the journal.
func TestRunMasksCardNumbersEverywhere(t *testing.T) {
	c := cardtest.Numbers
	job, root := exampleJob(t,
		[2]string{"to: []", "to: [finance@example.com]"},
		[2]string{"allow_partial: false", "allow_partial: true"})
	batch := "Terminal,Transaction Reference ID,Order Reference ID,Merchant Txn ID,Amount,Currency,Notes\n" +
		"ABC123,TXS00001,ORS00001,RF-1001,25.00,USD,card " + c[0] + "\n" +
		"ABC123,TXS00002,ORS00002,RF-1002,80.00,USD,\"" + c[1] + "\"\n" +
		c[2] + ",TXS00003,ORS00003,RF-1003,10.00,GBP,x\n" +
		"TERM01," + c[3] + ",ORS00004,RF-1004,50.51,EUR,x\n" +
		"TERM01,TXS00005," + c[4] + ",RF-1005,5000,JPY,x\n" +
		"TERM01,TXS00006,ORS00006,RF-1006," + c[5] + ",KWD,x\n" +
		"ABC123,TXS00007,ORS00007,RF-1007,15.00,\"" + c[6] + "\",x\n" +
		"ABC123,TXS00008,ORS00008,RF-1008,40.52,USD,x\n"
	ledger := "merchant_transaction_id,amount,currency,type,date,expected_status\n" +
		"RF-1001,25.00,USD,refund " + c[7] + ",2026-11-21,succeeded\n" +
		"RF-1002,80.00,USD,refund,\"" + c[8] + "\",succeeded\n" +
		"RF-1003,12.00,GBP,refund,2026-11-21,succeeded\n" +
		"RF-1006,2.500,KWD,refund,2026-11-21,succeeded\n" +
		"RF-1008,40.52,USD,refund,2026-11-21,succeeded\n"
	writeDemo(t, root, batch, ledger)
	ts := demoSandbox(t)
	smtp := smtptest.Start(t)
	getenv := demoEnv(ts, smtp)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", job, "--verbose"}, env{stdout: &stdout, stderr: &stderr, getenv: getenv})
	if err != nil {
		stderr.WriteString(errorLine(err) + "\n") // as main prints it
	}
	if code := exitCode(err); code != exitExceptions {
		t.Fatalf("run: exit %d (%v), want 1\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	out := filepath.Join(root, "paybatch-out")
	for _, want := range []string{"report.xlsx", "summary.json", "csv/rejected.csv", "parquet/matched.parquet", "journal.duckdb"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("output %s missing: %v (the scan would prove nothing)", want, err)
		}
	}
	check := func(name string, leaks []cardtest.Leak, err error) {
		t.Run(name, func(t *testing.T) {
			if err != nil {
				t.Fatal(err)
			}
			if owner, ok := knownLeaks[name]; ok {
				if len(leaks) == 0 {
					t.Fatalf("%s no longer leaks: remove it from knownLeaks", name)
				}
				t.Skipf("KNOWN LEAK, owned by %s: %d unmasked numbers, first %s", owner, len(leaks), leaks[0])
			}
			for _, l := range leaks {
				t.Errorf("unmasked card number: %s", l)
			}
		})
	}
	check("stdout", cardtest.Text("stdout", stdout.String()), nil)
	check("stderr", cardtest.Text("stderr", stderr.String()), nil)
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(out, e.Name())
		if e.IsDir() {
			leaks, err := cardtest.Dir(p)
			check(e.Name(), leaks, err)
			continue
		}
		leaks, err := cardtest.File(p)
		check(e.Name(), leaks, err)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mails = %d, want 1", len(msgs))
	}
	leaks, err := mailLeaks(t, msgs[0].Data)
	check("e-mail", leaks, err)
}

// mailLeaks decodes every part of a message (headers, text, HTML,
// attachments) and scans it.
func mailLeaks(t *testing.T, raw []byte) ([]cardtest.Leak, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var leaks []cardtest.Leak
	for k, vs := range msg.Header {
		for _, v := range vs {
			d, err := new(mime.WordDecoder).DecodeHeader(v)
			if err != nil {
				d = v
			}
			leaks = append(leaks, cardtest.Text("mail header "+k, d)...)
		}
	}
	var walk func(r io.Reader, ctype, enc, name string) error
	walk = func(r io.Reader, ctype, enc, name string) error {
		switch strings.ToLower(enc) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, r)
		case "quoted-printable":
			r = quotedprintable.NewReader(r)
		}
		mt, params, _ := mime.ParseMediaType(ctype)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				// multipart already decodes quoted-printable
				enc := p.Header.Get("Content-Transfer-Encoding")
				if strings.EqualFold(enc, "quoted-printable") {
					enc = ""
				}
				if err := walk(p, p.Header.Get("Content-Type"), enc, p.FileName()); err != nil {
					return err
				}
			}
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		f := filepath.Join(t.TempDir(), "part"+filepath.Ext(name))
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
		l, err := cardtest.File(f)
		leaks = append(leaks, l...)
		return err
	}
	err = walk(msg.Body, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "")
	return leaks, err
}

// TestReconcileErrorsMaskCardNumbers: reconcile's refusal of a ledger names
// the row, column and value; a card number in the value is masked in the
// error main prints and on stderr (issue 16, finding 4).
func TestReconcileErrorsMaskCardNumbers(t *testing.T) {
	dir := t.TempDir()
	l := filepath.Join(dir, "ledger.csv")
	p := filepath.Join(dir, "results.csv")
	os.WriteFile(l, []byte("merchant_transaction_id,amount,currency\nA,"+cardtest.Numbers[0]+",USD\nB,1.00,\""+cardtest.Numbers[1]+"\"\n"), 0o644)
	os.WriteFile(p, []byte("merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\n"), 0o644)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"reconcile", "--results", p, "--ledger", l}, env{stdout: &stdout, stderr: &stderr})
	if exitCode(err) != exitUsage {
		t.Fatalf("exit %d (%v), want 2", exitCode(err), err)
	}
	line := errorLine(err)
	if !strings.Contains(line, "411111******1111") {
		t.Errorf("the error does not name the (masked) value: %s", line)
	}
	for name, s := range map[string]string{"error": line, "stdout": stdout.String(), "stderr": stderr.String()} {
		for _, l := range cardtest.Text(name, s) {
			t.Errorf("unmasked card number: %s", l)
		}
	}
}

// TestJournalExportMasksCardNumbers: `journal export` writes a journal's
// text columns with their card numbers masked (the journal keeps a row's
// text as its batch held it), and text without one as it is.
func TestJournalExportMasksCardNumbers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal.duckdb")
	j, err := journal.OpenDuckDB(ctx, jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := cardtest.Numbers
	card := journaltest.Row(1, 100)
	card.MerchantTxID, card.Terminal, card.TransactionRef = "rf "+c[1], c[0], c[2]
	card.Source.File = "refunds " + c[3] + ".csv"
	plain := journaltest.Row(2, 200)
	plain.TransactionRef = "1234567890123" // 13 digits, not Luhn-valid: masked all the same
	if _, err := j.Ingest(ctx, journaltest.Seq(card, plain), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "journal.parquet")
	if _, errs, code := runCLI(t, nil, "journal", "export", "--journal", jpath, "--out", out); code != exitOK {
		t.Fatalf("journal export: exit %d\n%s", code, errs)
	}
	cardtest.NoLeaks(t, out)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got string
	if err := db.QueryRow(`SELECT string_agg(concat_ws('|', merchant_transaction_id, terminal, transaction_ref, order_ref, source_file), ' / ' ORDER BY key) FROM read_parquet($1)`, out).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "rf 555555******4444|411111******1111|378282*****0005|ORA00001|refunds 422222***2222.csv / rf-00002|ABC123|123456***0123|ORA00002|refunds.csv"
	if got != want {
		t.Errorf("exported\n%s\nwant\n%s", got, want)
	}
}
