package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
)

// commentedText is the text a document starts with under -comments: the
// threads need text to sit on.
var commentedText = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 4000/45+1)[:4000]

// addComments puts n threads on random ranges of document id (rev 1,
// the created text), one POST each.
func addComments(ctx context.Context, base, id string, n int) error {
	r := rand.New(rand.NewPCG(uint64(len(id)), 28))
	size := len(commentedText)
	for i := range n {
		from := r.IntN(size - 40)
		body := fmt.Sprintf(`{"rev":1,"range":[%d,%d],"text":"thread %d"}`, from, from+1+r.IntN(40), i)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/docs/"+id+"/comments", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST comments: %s (raise the server's -comment-rate, -comment-burst, -max-comments)", resp.Status)
		}
	}
	return nil
}
