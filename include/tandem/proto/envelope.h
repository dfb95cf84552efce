/* Protocol v5 envelopes (9-byte CQL header + body) over segments. The reader turns socket bytes into
 * whole envelopes: self-contained segments carry one or more of them, an envelope over one segment spans
 * consecutive non-self-contained segments and is reassembled. The writer packs queued envelopes into
 * self-contained segments, splits large ones, and optionally compresses with lz4 (it copies every byte:
 * the mock, the test client and tdm-bench use it). The emitters at the end are the proxy's output:
 * they segment envelopes without copying a body (uncompressed) or with one copy (lz4). */
#ifndef TANDEM_PROTO_ENVELOPE_H
#define TANDEM_PROTO_ENVELOPE_H

#include <tandem/common.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/segment.h>

#define TDM_ENVELOPE_HEADER 9u
/* Body limit of a reader whose max_frame_bytes is 0 (the protocol's own 256 MB cap). */
#define TDM_ENVELOPE_DEFAULT_MAX (256u << 20)

/* One envelope handed out by the reader. */
typedef struct tdm_envelope_s {
  tdm_frame_header_t header; /* decoded header; flag 0x01 cleared (ignored in v5, the raw bytes keep it) */
  const uint8_t *data;       /* header + body, contiguous; NULL for an over-limit envelope */
  size_t len;                /* TDM_ENVELOPE_HEADER + header.length; 0 when data is NULL */
  const uint8_t *body;       /* data + TDM_ENVELOPE_HEADER, or NULL */
  bool borrowed;             /* data points into the caller's input; else into the reader's own memory */
} tdm_envelope_t;

/* Incremental decoder; a zeroed struct is valid (limit 256 MB, uncompressed, CRCs checked). Set the three
 * configuration fields before the first call and leave them alone afterwards.
 *
 * Calling: pass the input bytes the reader has not consumed yet, in[0..len) (the socket buffer from its
 * first unconsumed byte). On return *consumed bytes at the start of in are done with; the next call must
 * begin right after them, with the same unconsumed bytes (they may have moved: the reader keeps offsets,
 * never pointers, into the input) and whatever arrived since. The caller's buffer must be able to hold
 * TDM_SEGMENT_MAX_ENCODED bytes, or a full-size segment can never be decoded.
 *
 * Lifetimes (the hot path copies nothing):
 *  - borrowed envelopes (uncompressed or stored lz4 self-contained segments) point into in; they stay
 *    valid as long as the caller keeps those bytes where they are. An envelope never lies in the bytes
 *    *consumed reports on the call that returned it, so releasing consumed bytes without moving the rest
 *    (ring buffer, refcounted chunks) keeps it valid; compacting by memmove does not.
 *  - other envelopes (lz4-decompressed, reassembled) live in the reader and stay valid until the next
 *    call on it or tdm_envelope_reader_free(). tdm_envelope_reader_steal() keeps a reassembled one.
 *
 * Errors: TDM_EPROTO_TOO_LARGE (body over the limit) is not fatal: env->header is filled (data NULL), the
 * body is skipped as it arrives, and the next call goes on. TDM_EPROTO_MALFORMED, TDM_EPROTO_CRC,
 * TDM_EPROTO_COMPRESS and TDM_ENOMEM are fatal and sticky: every later call returns the same code. */
typedef struct tdm_envelope_reader_s {
  uint32_t max_frame_bytes; /* config: largest accepted envelope body; 0 = TDM_ENVELOPE_DEFAULT_MAX */
  bool lz4;                 /* config: segments use the lz4 format (negotiated at STARTUP) */
  bool skip_crc;            /* config: do not verify CRC24/CRC32 (fuzzing reaches deeper with it) */
  int err;                  /* sticky fatal error; 0 while healthy */
  bool seg_active;          /* a self-contained segment is being handed out, envelope by envelope */
  bool seg_borrowed;        /* its payload is in the input (the segment starts at the first unconsumed byte) */
  size_t seg_off;           /* borrowed: payload offset from the segment start (its header size) */
  size_t seg_wire;          /* borrowed: wire size of the segment, consumed once its last envelope is out */
  size_t seg_pos;           /* offset of the next envelope in the payload; <= seg_len */
  size_t seg_len;           /* payload bytes (after decompression) */
  uint8_t *plain;           /* decompressed payload, TDM_SEGMENT_MAX_PAYLOAD bytes, allocated on first need */
  uint8_t **spare;          /* config, optional: a slot shared by the owner's readers (one thread) holding an
                               idle decompression buffer: taken instead of malloc, refilled by trim */
  uint8_t head[TDM_ENVELOPE_HEADER]; /* split envelope header while it is still incomplete */
  size_t head_len;          /* bytes in head; > 0 means a split envelope is under way */
  uint8_t *big;             /* reassembly buffer, allocated once the header passed the limit check */
  size_t big_cap;           /* bytes allocated at big; grows with what arrives, never past big_need */
  size_t big_len;           /* split envelope bytes collected so far; <= big_cap */
  size_t big_need;          /* split envelope total size; 0 when none is being collected */
  size_t discard;           /* body bytes of an over-limit split envelope still to drop */
  bool big_out;             /* big holds the envelope returned last; released by the next call */
} tdm_envelope_reader_t;

/* Returns 1 with *env set, 0 when more input is needed, or a negative error (see above). */
TDM_MUSTCHECK int tdm_envelope_read(tdm_envelope_reader_t *r, const uint8_t *in, size_t len, size_t *consumed,
                                    tdm_envelope_t *env);

/* Takes the reassembly buffer holding the envelope returned by the last call (env->data == the result),
 * so a large envelope can be forwarded without a copy; free() it. NULL if that envelope was not one. */
uint8_t *tdm_envelope_reader_steal(tdm_envelope_reader_t *r);

/* Releases the lz4 decompression buffer when no decompressed envelope is pending (an idle connection
 * then holds no reader memory): into the spare slot when one is configured and empty, else free(); the
 * next lz4 segment takes the spare or allocates again. Readers sharing a slot never need it at once as
 * long as each is trimmed before another reads (one loop thread, trim after each read callback). */
void tdm_envelope_reader_trim(tdm_envelope_reader_t *r);

/* Frees the reader's buffers and resets its decoding state; the configuration fields are kept. */
void tdm_envelope_reader_free(tdm_envelope_reader_t *r);

/* Segment builder; a zeroed struct is valid (uncompressed). Envelopes are appended to an open
 * self-contained segment until the next would not fit in TDM_SEGMENT_MAX_PAYLOAD; an envelope larger
 * than that goes alone into non-self-contained segments. Sealed segments accumulate in buf[0..len); the
 * open one is built in place after them (lz4 compresses it there at sealing) and is sealed by
 * tdm_envelope_writer_flush() (once per loop iteration) or _take(). Each envelope byte is copied once.
 * After _take() the writer holds no memory. After an error the output is unusable (the connection
 * must close): every later call returns the same code. */
typedef struct tdm_envelope_writer_s {
  bool lz4;         /* config: compress segments (a segment that would not shrink is sent stored) */
  int err;          /* sticky error; 0 while healthy */
  uint8_t *buf;     /* sealed segments for the socket, then the open segment being built */
  size_t len;       /* bytes of sealed segments in buf */
  size_t cap;       /* bytes allocated at buf */
  bool open;        /* a segment is being filled, in place, after the sealed ones */
  size_t open_len;  /* payload bytes in the open segment */
} tdm_envelope_writer_t;

/* Queues one envelope given as its 9-byte header and body (the hot path: a patched header and a shared
 * body). TDM_EINVAL if the header is not a 9-byte one or its length field is not body_len. Flag 0x01 is
 * cleared in the copy written out. */
TDM_MUSTCHECK int tdm_envelope_writer_add(tdm_envelope_writer_t *w, const uint8_t header[TDM_ENVELOPE_HEADER],
                                          const uint8_t *body, size_t body_len);
/* Queues one contiguous envelope (header + body, len bytes). */
TDM_MUSTCHECK int tdm_envelope_writer_add_envelope(tdm_envelope_writer_t *w, const uint8_t *env, size_t len);
/* Seals the open segment so that buf[0..len) holds every queued envelope. */
TDM_MUSTCHECK int tdm_envelope_writer_flush(tdm_envelope_writer_t *w);
/* Flushes, then hands buf over (free() it after the socket write completes); *out is NULL when there is
 * nothing to send. The writer starts a fresh buffer on the next add. */
TDM_MUSTCHECK int tdm_envelope_writer_take(tdm_envelope_writer_t *w, uint8_t **out, size_t *len);
/* Frees the buffers and drops anything queued; the writer is empty again (lz4 kept). */
void tdm_envelope_writer_free(tdm_envelope_writer_t *w);

/* Zero-copy output (the proxy's hot path): envelopes given as a 9-byte header and a body left where it
 * is. Uncompressed, tdm_envelope_emit lays a run of them out as segments whose bodies are queued by
 * reference: consecutive envelopes share self-contained segments up to TDM_SEGMENT_MAX_PAYLOAD bytes
 * (the bytes on the wire are exactly those tdm_envelope_writer would produce), and an envelope over
 * that spans tdm_envelope_segments() non-self-contained segments, each full but the last, its header
 * in the first. Segment headers, envelope headers and CRC32 trailers (computed over the pieces)
 * travel inline; a trailer rides with the next segment's header. lz4 builds segments into buffers
 * the caller provides (tdm_envelope_emit_lz4, below). Flag 0x01 is cleared in the headers sent, as
 * the writer does. */

/* Inline bytes of one piece at most: a trailer, a segment header and an envelope header. */
#define TDM_ENVELOPE_PIECE_INLINE (TDM_SEGMENT_CRC_BYTES + TDM_SEGMENT_HEADER_PLAIN + TDM_ENVELOPE_HEADER)

/* Envelope i of the caller's run: its 9-byte header, its body (NULL when len is 0) and body length. */
typedef void (*tdm_envelope_get_fn)(void *arg, size_t i, const uint8_t **hdr, const uint8_t **body, size_t *len);
/* One piece, in wire order: inl[0..inl_len) (<= TDM_ENVELOPE_PIECE_INLINE, valid during the call: copy
 * it), then bytes [off, off + len) of envelope i's body, by reference (nothing when len is 0; i is then
 * meaningless). Returns 0, or an error that stops the run. */
typedef int (*tdm_envelope_put_fn)(void *arg, const uint8_t *inl, size_t inl_len, size_t i, size_t off, size_t len);

/* Emits envelopes 0..n-1 uncompressed, as described above; the last piece carries the last trailer.
 * Returns 0 or put's first error (the output is then cut short: the connection must close). */
TDM_MUSTCHECK int tdm_envelope_emit(size_t n, tdm_envelope_get_fn get, tdm_envelope_put_fn put, void *arg);

/* lz4 output of a run. Small envelopes (header + body <= TDM_ENVELOPE_LZ4_GATHER_MAX) are gathered,
 * consecutive ones together up to TDM_ENVELOPE_LZ4_RUN_MAX bytes, into the segment's own buffer and
 * compressed once per segment (tdm_segment_seal_lz4_gathered): lz4 finds little in one small envelope
 * but much across several (same statement, similar values), and each call has a fixed cost. Larger
 * envelopes are compressed straight from their bodies, one segment each (tdm_envelope_cut_lz4). Either
 * way every body is copied once, into the segment's buffer (the forced copy of compression). A run's
 * buffer (TDM_SEGMENT_LZ4_GATHER_ROOM(8000) = 16020 bytes) fits a 16 KiB pool block. */
#define TDM_ENVELOPE_LZ4_GATHER_MAX 2048u
#define TDM_ENVELOPE_LZ4_RUN_MAX 8000u
/* A buffer of at least n bytes for the next segment (the caller remembers which, to queue it), or NULL
 * when out of memory. */
typedef uint8_t *(*tdm_envelope_buf_fn)(void *arg, size_t n);
/* The segment is ready in the buffer last handed out, at [start, start + size): queue it. 0 or an error
 * that stops the run. */
typedef int (*tdm_envelope_seg_fn)(void *arg, size_t start, size_t size);
/* Emits envelopes 0..n-1 as lz4 segments, as described above. 0, TDM_ENOMEM, or seg's first error
 * (the output is then cut short: the connection must close). z as for tdm_segment_build_lz4. */
TDM_MUSTCHECK int tdm_envelope_emit_lz4(tdm_segment_lz4_t *z, size_t n, tdm_envelope_get_fn get,
                                        tdm_envelope_buf_fn buf, tdm_envelope_seg_fn seg, void *arg);

/* Segments an envelope with a body of body_len bytes takes on its own (>= 1). */
size_t tdm_envelope_segments(size_t body_len);
/* Bytes of the buffer segment k (< tdm_envelope_segments) of that envelope needs compressed: its
 * stored size, TDM_SEGMENT_LZ4_ROOM of its payload. */
size_t tdm_envelope_lz4_room(size_t body_len, size_t k);
/* Segment k of one envelope built with lz4 into out (tdm_envelope_lz4_room bytes); the segment is
 * out[*start, +size). Returns its size. z as for tdm_segment_build_lz4. */
size_t tdm_envelope_cut_lz4(tdm_segment_lz4_t *z, const uint8_t header[TDM_ENVELOPE_HEADER], const uint8_t *body,
                            size_t body_len, size_t k, uint8_t *out, size_t *start);

#endif
