package collab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/collabd/collabd/ot"
)

// WriteClient makes the HTTP writes of docs/protocol.md ("HTTP writes")
// for Go programs: scripts, bots and agents that write into documents
// without an editing session. The zero value of every field but BaseURL
// works. It is safe for concurrent use.
type WriteClient struct {
	// BaseURL is the server's, like http://127.0.0.1:8080.
	BaseURL string
	// Token, if set, is sent as Authorization: Bearer.
	Token string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// WriteOptions are the optional parts of a write.
type WriteOptions struct {
	// Name names the writer (a token's name wins). An IdempotencyKey
	// is the writer's: a retry must give the same Name.
	Name string
	// Strict applies the write only if the document is still at the
	// revision it was made on; otherwise the error is a *WriteError with
	// Code "conflict" and Rev the head.
	Strict bool
	// IdempotencyKey makes a retry with the same key get the first
	// answer and apply nothing.
	IdempotencyKey string
}

// WriteResult is a write's answer: the revision it became (the head if
// it changed nothing) and its run id.
type WriteResult struct {
	Rev int64  `json:"rev"`
	Run string `json:"run"`
}

// WriteError is an HTTP write's refusal.
type WriteError struct {
	Status  int
	Code    string
	Message string
	Rev     int64 // the head, for a conflict
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("collab: write refused: %d %s: %s", e.Status, e.Code, e.Message)
}

// Ops writes op, made on revision rev of document id.
func (c *WriteClient) Ops(ctx context.Context, id string, rev int64, op ot.Op, o WriteOptions) (WriteResult, error) {
	body := map[string]any{"rev": rev, "op": op, "strict": o.Strict}
	if o.Name != "" {
		body["name"] = o.Name
	}
	var out WriteResult
	return out, c.do(ctx, "POST", "/api/docs/"+id+"/ops", body, o.IdempotencyKey, &out)
}

// Text makes document id's text equal text, as a diff against its text
// at revision rev (negative: the head), so that what others changed
// elsewhere since rev stays.
func (c *WriteClient) Text(ctx context.Context, id string, rev int64, text string, o WriteOptions) (WriteResult, error) {
	body := map[string]any{"text": text, "strict": o.Strict}
	if rev >= 0 {
		body["rev"] = rev
	}
	if o.Name != "" {
		body["name"] = o.Name
	}
	var out WriteResult
	return out, c.do(ctx, "PUT", "/api/docs/"+id+"/text", body, o.IdempotencyKey, &out)
}

// Revert takes run back out of document id, keeping everyone else's
// edits, and returns the revision it became.
func (c *WriteClient) Revert(ctx context.Context, id, run, idempotencyKey string) (int64, error) {
	var out struct {
		Rev int64 `json:"rev"`
	}
	err := c.do(ctx, "POST", "/api/docs/"+id+"/revert", map[string]string{"run": run}, idempotencyKey, &out)
	return out.Rev, err
}

// StreamProgress is one line of a stream's answer.
type StreamProgress struct {
	Rev      int64  `json:"rev"`
	Inserted int64  `json:"inserted"`
	Run      string `json:"run,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Stream inserts what body yields into document id as it comes, at code
// point at of revision rev (at < 0: the end; rev < 0: the head), calling
// progress, if not nil, with each line of the answer. It returns the
// last line, which names the run.
func (c *WriteClient) Stream(ctx context.Context, id string, at int, rev int64, name string, body io.Reader, progress func(StreamProgress)) (StreamProgress, error) {
	q := url.Values{}
	if at >= 0 {
		q.Set("at", strconv.Itoa(at))
	}
	if rev >= 0 {
		q.Set("rev", strconv.FormatInt(rev, 10))
	}
	if name != "" {
		q.Set("name", name)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(c.BaseURL, "/")+"/api/docs/"+id+"/stream?"+q.Encode(), body)
	if err != nil {
		return StreamProgress{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.send(req, "")
	if err != nil {
		return StreamProgress{}, err
	}
	defer resp.Body.Close()
	var last StreamProgress
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var p StreamProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return last, fmt.Errorf("collab: stream answer line %q: %w", sc.Text(), err)
		}
		last = p
		if progress != nil {
			progress(p)
		}
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	if !last.Done {
		return last, fmt.Errorf("collab: stream answer ended without its last line")
	}
	if last.Error != nil {
		return last, &WriteError{Status: resp.StatusCode, Code: last.Error.Code, Message: last.Error.Message, Rev: last.Rev}
	}
	return last, nil
}

// do makes a JSON write and decodes its answer into out.
func (c *WriteClient) do(ctx context.Context, method, path string, body any, key string, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.send(req, key)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// send makes a request and turns a refusal into a *WriteError.
func (c *WriteClient) send(req *http.Request, key string) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		apiError
		Rev int64 `json:"rev"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return nil, &WriteError{Status: resp.StatusCode, Code: CodeInternal, Message: strings.TrimSpace(string(b))}
	}
	return nil, &WriteError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Rev: e.Rev}
}
