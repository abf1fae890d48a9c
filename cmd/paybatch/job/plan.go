package job

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
)

// fileConfig is job.yaml as written. Secrets are never in it: only the names
// of the environment variables that hold them.
type fileConfig struct {
	Provider     string   `yaml:"provider"`
	Kind         string   `yaml:"kind"`
	Inputs       []string `yaml:"inputs"`
	Sheet        string   `yaml:"sheet"`
	DecimalComma bool     `yaml:"decimal_comma"`
	Mapping      string   `yaml:"mapping"`
	AllowPartial bool     `yaml:"allow_partial"`

	Ledger      string `yaml:"ledger"`
	LedgerSheet string `yaml:"ledger_sheet"`
	Tolerance   string `yaml:"tolerance"`
	MemoryLimit string `yaml:"memory_limit"`

	Outputs     string   `yaml:"outputs"`
	Journal     string   `yaml:"journal"`
	Exports     []string `yaml:"exports"`
	MetricsFile string   `yaml:"metrics_file"`

	PollDeadline string `yaml:"poll_deadline"`
	Limits       struct {
		Rate        string `yaml:"rate"`
		StatusRate  string `yaml:"status_rate"`
		Contracted  string `yaml:"contracted"`
		Concurrency int    `yaml:"concurrency"`
	} `yaml:"limits"`

	Credentials struct {
		SecretEnv  string `yaml:"secret_env"`
		BaseURLEnv string `yaml:"base_url_env"`
	} `yaml:"credentials"`

	Email struct {
		To            []string `yaml:"to"`
		MaxAttachment string   `yaml:"max_attachment"`
	} `yaml:"email"`

	Report struct {
		// XLSXMatchedRows caps the matched rows in the workbook (0: all);
		// see writers.XLSXOptions.MatchedRows.
		XLSXMatchedRows int64 `yaml:"xlsx_matched_rows"`
	} `yaml:"report"`
}

// Plan is a resolved, validated job: absolute paths, parsed values and
// defaults filled in. It is what `config check` prints and Run executes.
type Plan struct {
	ConfigPath   string
	Provider     paybatch.Provider
	Kind         paybatch.Kind
	InputPattern []string
	Inputs       []string // files matched now, sorted
	Sheet        string
	DecimalComma bool
	Mapping      string
	AllowPartial bool

	Ledger      string
	LedgerSheet string
	Tolerance   string
	MemoryLimit string

	Outputs     string
	Journal     string // a DuckDB file or a postgres:// URL
	JournalSet  bool   // the job file gave it (else $PAYBATCH_JOURNAL_URL may)
	Exports     []string
	MetricsFile string

	PollDeadline time.Duration
	Rate         string
	StatusRate   string
	Contracted   string // the credential's contracted payment limit (limits.contracted)
	Concurrency  int

	SecretEnv  string
	BaseURLEnv string

	EmailTo       []string
	MaxAttachment int64

	XLSXMatchedRows int64 // the most matched rows in the workbook (0: every one)
}

var secretKey = regexp.MustCompile(`(?i)^\s*(api_?key|token|password|secret|bearer)\s*:`)

// LoadPlan reads and resolves a job file. Errors are of kind
// paybatch.ErrConfig. Relative paths are relative
// to the file's directory, so a job runs the same from any working directory.
func LoadPlan(path string) (*Plan, error) {
	p, err := loadPlan(path)
	return p, paybatch.WithKind(paybatch.ErrConfig, err)
}

func loadPlan(path string) (*Plan, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, line := range strings.Split(string(raw), "\n") {
		if secretKey.MatchString(line) {
			return nil, fmt.Errorf("config %s line %d: secrets are never written in the job file; put the secret in an environment variable and name it under credentials.secret_env", path, i+1)
		}
	}
	var c fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return c.resolve(abs)
}

func (c fileConfig) resolve(configPath string) (*Plan, error) {
	dir := filepath.Dir(configPath)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	p := &Plan{ConfigPath: configPath, Sheet: c.Sheet, DecimalComma: c.DecimalComma, AllowPartial: c.AllowPartial,
		LedgerSheet: c.LedgerSheet, Tolerance: c.Tolerance, MemoryLimit: c.MemoryLimit,
		Rate: c.Limits.Rate, StatusRate: c.Limits.StatusRate, Contracted: c.Limits.Contracted, Concurrency: c.Limits.Concurrency,
		EmailTo: c.Email.To, XLSXMatchedRows: c.Report.XLSXMatchedRows}

	kind, err := paybatch.ParseKind(c.Kind)
	if err != nil {
		bad("kind: %v", err)
	}
	p.Kind = kind
	if c.Provider == "" && kind != "" {
		p.Provider = kind.Provider()
	} else if prov, err := paybatch.ParseProvider(c.Provider); err != nil {
		bad("provider: %v", err)
	} else {
		p.Provider = prov
		if kind != "" && kind.Provider() != prov {
			bad("kind %s is a %s operation, not %s", kind, kind.Provider(), prov)
		}
	}

	if len(c.Inputs) == 0 {
		bad("inputs: give at least one file, glob or directory")
	}
	for _, in := range c.Inputs {
		p.InputPattern = append(p.InputPattern, rel(in))
	}
	if p.Inputs, err = expandInputs(p.InputPattern); err != nil {
		bad("inputs: %v", err)
	}
	p.Mapping = rel(c.Mapping)
	if c.Ledger == "" {
		bad("ledger: the merchant ledger export to reconcile against is required")
	}
	p.Ledger = rel(c.Ledger)

	p.Outputs = rel(c.Outputs)
	if p.Outputs == "" {
		p.Outputs = filepath.Join(dir, "paybatch-out")
	}
	p.Journal, p.JournalSet = c.Journal, c.Journal != ""
	if !postgres.IsURL(p.Journal) {
		p.Journal = rel(p.Journal)
	}
	if p.Journal == "" {
		p.Journal = filepath.Join(p.Outputs, "journal.duckdb")
	}
	p.MetricsFile = rel(c.MetricsFile)
	for _, x := range c.Exports {
		if !slices.Contains([]string{"csv", "parquet", "json"}, x) {
			bad("exports: %q is not one of csv, parquet, json", x)
		}
	}
	p.Exports = c.Exports

	p.PollDeadline = 10 * time.Minute
	if c.PollDeadline != "" {
		if p.PollDeadline, err = time.ParseDuration(c.PollDeadline); err != nil || p.PollDeadline <= 0 {
			bad("poll_deadline: %q is not a positive duration such as 10m", c.PollDeadline)
		}
	}
	for name, v := range map[string]string{"limits.rate": p.Rate, "limits.status_rate": p.StatusRate} {
		if v != "" {
			if _, err := paybatch.ParseLimit(v); err != nil {
				bad("%s: %v", name, err)
			}
		}
	}
	if p.Contracted != "" {
		if _, err := paybatch.ParseLimit(p.Contracted); err != nil {
			bad("limits.contracted: %v (the contracted limit of the job's credential, e.g. 300/1s)", err)
		}
	}
	if p.Concurrency < 0 {
		bad("limits.concurrency: must be 0 (automatic) or positive")
	}
	if p.XLSXMatchedRows < 0 {
		bad("report.xlsx_matched_rows: must be 0 (every matched row in the workbook) or a positive cap")
	}

	defSecret, defURL := "SMARTRETRY_API_KEY", "SMARTRETRY_BASE_URL"
	if p.Provider == paybatch.SmarterPay {
		defSecret, defURL = "SMARTERPAY_TOKEN", "SMARTERPAY_BASE_URL"
	}
	p.SecretEnv, p.BaseURLEnv = cmp.Or(c.Credentials.SecretEnv, defSecret), cmp.Or(c.Credentials.BaseURLEnv, defURL)

	p.MaxAttachment = 10 << 20
	if c.Email.MaxAttachment != "" {
		if p.MaxAttachment, err = parseSize(c.Email.MaxAttachment); err != nil {
			bad("email.max_attachment: %v", err)
		}
	}
	for _, to := range c.Email.To {
		if !strings.Contains(to, "@") {
			bad("email.to: %q is not an e-mail address", to)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config %s:\n  %s", configPath, strings.Join(problems, "\n  "))
	}
	return p, nil
}

// expandInputs turns files, globs and directories into a sorted list of
// batch files (directories contribute their *.csv and *.xlsx files).
func expandInputs(patterns []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, pat := range patterns {
		if st, err := os.Stat(pat); err == nil && st.IsDir() {
			entries, err := os.ReadDir(pat)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				ext := strings.ToLower(filepath.Ext(e.Name()))
				if !e.IsDir() && (ext == ".csv" || ext == ".xlsx" || ext == ".txt" || ext == ".tsv") {
					add(filepath.Join(pat, e.Name()))
				}
			}
			continue
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", pat, err)
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() {
				add(m)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// parseSize reads "10MiB", "512KB", "1048576".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(t, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 10MiB", s)
	}
	return n * mult, nil
}

// Credentials returns the credentials the job names, read through getenv
// (os.Getenv in the CLI): the secret from SecretEnv, the endpoint from
// BaseURLEnv.
func (p *Plan) Credentials(getenv func(string) string) Credentials {
	return Credentials{Secret: getenv(p.SecretEnv), BaseURL: getenv(p.BaseURLEnv), SecretVar: p.SecretEnv, BaseURLVar: p.BaseURLEnv}
}

// Engine returns the job's limits as engine settings (validated when the
// plan was resolved).
func (p *Plan) Engine() (Engine, error) {
	e := Engine{Concurrency: p.Concurrency, PollDeadline: p.PollDeadline}
	var err error
	if p.Rate != "" {
		if e.SubmitRate, err = paybatch.ParseLimit(p.Rate); err != nil {
			return e, fmt.Errorf("limits.rate: %w", err)
		}
	}
	if p.StatusRate != "" {
		if e.StatusRate, err = paybatch.ParseLimit(p.StatusRate); err != nil {
			return e, fmt.Errorf("limits.status_rate: %w", err)
		}
	}
	if p.Contracted != "" {
		l, err := paybatch.ParseLimit(p.Contracted)
		if err != nil {
			return e, fmt.Errorf("limits.contracted: %w", err)
		}
		e.Contracted = map[paybatch.Provider]paybatch.Limit{p.Provider: l}
	}
	return e, nil
}
