package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

func newSandboxCmd(e *env) *cobra.Command {
	var (
		addr, fixtures, faults          string
		seed                            int64
		allowRemote                     bool
		srPayments, srStatus, srOverall string
		srSettle                        time.Duration
		spLimit                         string
		spSubmit, spSettle              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve a stateful sandbox of the SmartRetry and SmarterPay APIs",
		Long: `sandbox serves faithful, stateful copies of both provider APIs from one process,
so a batch can be rehearsed before it moves real money:

  SmartRetry   /v1/…, /health/…     x-api-key: sr_test_key   terminals ABC123, TERM01
  SmarterPay   /service.svc/…       Authorization: Bearer sp_test_token
                                    (sp_expired_token answers 498)
  Sandbox      GET /_sandbox/operations  every operation actually executed
               GET /_sandbox/stats       requests, executed, replayed, rate_limited, faults.*
               GET /_sandbox/fixtures    the seeded transactions and mandates
               POST /_sandbox/reset      back to the fixtures

Limits are N/DURATION per key (e.g. 50/1s). Faults are seeded and reproducible:
  --faults '5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms,hang=0.01'
5xx answers without doing the work, reset drops the connection before it,
lost does the work and then drops the connection (the double-charge case),
hang holds the request until the client gives up, latency delays it.

SmartRetry decline triggers (amount's minor units modulo 100): 51 declined at
once (accepted:false), 52 accepted then DECLINED, 53 accepted then ERROR; card
4000000000000002 declines a sale. SmarterPay payments and credits fail by the
amount in pence modulo 100 (51, 52, 53); collection dates roll forward to the
next collectable banking day (England & Wales).`,
		Example: `  paybatch sandbox --addr 127.0.0.1:8080
  curl -s -H 'x-api-key: sr_test_key' -H 'Content-Type: application/json' \
       -H 'Idempotency-Key: refund-0001' http://127.0.0.1:8080/v1/payments/refund/ABC123 \
       -d '{"transaction_reference_id":"TXS00001","order_reference_id":"ORS00001","merchant_transaction_id":"refund-0001","amount":25.00}'
  paybatch sandbox --faults 'lost=0.05,5xx=0.05' --seed 7 --smartretry-payments-limit 20/1s \
       --smarterpay-limit 100/10s --smarterpay-submit-delay 1s --smarterpay-settle-delay 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := sandbox.Options{Seed: seed, Faults: faults, Now: e.now}
			var err error
			if opts.SmartRetry.PaymentsLimit, err = rateFlag("--smartretry-payments-limit", srPayments); err != nil {
				return err
			}
			if opts.SmartRetry.StatusLimit, err = rateFlag("--smartretry-status-limit", srStatus); err != nil {
				return err
			}
			if opts.SmartRetry.OverallLimit, err = rateFlag("--smartretry-overall-limit", srOverall); err != nil {
				return err
			}
			opts.SmartRetry.SettleAfter, err = delayFlag("--smartretry-settle-delay", srSettle)
			if err != nil {
				return err
			}
			spRate, err := rateFlag("--smarterpay-limit", spLimit)
			if err != nil {
				return err
			}
			opts.SmarterPay.Limit = spRate
			if opts.SmarterPay.SubmitAfter, err = delayFlag("--smarterpay-submit-delay", spSubmit); err != nil {
				return err
			}
			if opts.SmarterPay.SettleAfter, err = delayFlag("--smarterpay-settle-delay", spSettle); err != nil {
				return err
			}
			if fixtures != "" {
				f, err := os.Open(fixtures)
				if err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--fixtures: %w", err))
				}
				opts.Fixtures, err = sandbox.LoadFixtures(f)
				f.Close()
				if err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--fixtures %s: %w", fixtures, err))
				}
			}
			if err := checkListenAddr(addr, allowRemote); err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, err)
			}
			srv, err := sandbox.New(opts)
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, err)
			}
			return serveSandbox(cmd.Context(), e, addr, srv, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (loopback only unless --allow-remote; port 0 picks a free one)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow a non-loopback --addr (the sandbox has no real security)")
	f.StringVar(&fixtures, "fixtures", "", `JSON file of seeded transactions and mandates ({"smartretry":{"transactions":[…]},"smarterpay":{"mandates":[…]}})`)
	f.StringVar(&faults, "faults", "", "fault spec, e.g. 5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms,hang=0.01")
	f.Int64Var(&seed, "seed", 1, "seed for faults and issued ids (same seed + same request order = same faults)")
	f.StringVar(&srPayments, "smartretry-payments-limit", smartretry.Limits().Submit.String(), "SmartRetry payment operations per API key (N/DURATION)")
	f.StringVar(&srStatus, "smartretry-status-limit", smartretry.Limits().Status.String(), "SmartRetry status queries per API key (N/DURATION)")
	f.StringVar(&srOverall, "smartretry-overall-limit", smartretry.Limits().Overall.String(), "SmartRetry requests of any kind per API key (N/DURATION)")
	f.DurationVar(&srSettle, "smartretry-settle-delay", srsandbox.DefaultSettleAfter, "how long SmartRetry operations stay PROCESSING (0: final at once)")
	f.StringVar(&spLimit, "smarterpay-limit", smarterpay.Limits().Overall.String(), "SmarterPay requests per bearer token (N/DURATION)")
	f.DurationVar(&spSubmit, "smarterpay-submit-delay", spsandbox.DefaultSubmitAfter, "how long SmarterPay payments stay pending_submission (0: at once)")
	f.DurationVar(&spSettle, "smarterpay-settle-delay", spsandbox.DefaultSettleAfter, "how long SmarterPay payments then stay submitted before successful/failed (0: at once)")
	return cmd
}

func rateFlag(name, v string) (paybatch.Limit, error) {
	l, err := paybatch.ParseLimit(v)
	if err != nil {
		return paybatch.Limit{}, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("%s: %w", name, err))
	}
	return l, nil
}

// delayFlag maps a user delay to the sandbox convention (0 = default,
// negative = at once).
func delayFlag(name string, d time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("%s: %s is negative", name, d))
	case d == 0:
		return -1, nil
	}
	return d, nil
}

// checkListenAddr refuses anything but a loopback address unless allowed.
func checkListenAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--addr %q is not a loopback address; the sandbox accepts test credentials anyone can read, so it listens on 127.0.0.1 unless you pass --allow-remote", addr)
}

func serveSandbox(ctx context.Context, e *env, addr string, srv *sandbox.Server, opts sandbox.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("sandbox: listen on %s: %w", addr, err))
	}
	base := "http://" + ln.Addr().String()
	faults := "none"
	if opts.Faults != "" {
		faults = fmt.Sprintf("%s (seed %d)", opts.Faults, opts.Seed)
	}
	fmt.Fprintf(e.stdout, `paybatch sandbox listening on %s
  SmartRetry  %s/v1/          x-api-key: %s   terminals: %s
  SmarterPay  %s/service.svc/ Authorization: Bearer %s
  Sandbox     %s/_sandbox/operations | /stats | /fixtures ; POST /_sandbox/reset
  Faults      %s
Stop with Ctrl-C.
`, base, base, srsandbox.TestAPIKey, strings.Join([]string{srsandbox.TestTerminal, srsandbox.TestTerminal2}, ", "),
		base, spsandbox.DefaultToken, base, faults)

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		srv.Close()
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("sandbox: %w", err))
	case <-ctx.Done():
	}
	srv.Close() // release requests held by hang faults
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("sandbox: %w", err))
	}
	fmt.Fprintln(e.stdout, "paybatch sandbox stopped")
	return nil
}
