/* Connection I/O for the mock.
 *
 *   socket --read--> in --(unframed) tdm_frame_header_decode + body [+ decompress]--> session_on_frame
 *                       \-(v5 framed) tdm_envelope_read: segments -> envelopes ----> session_on_frame
 *   session --tdm_mock_conn_send--> out (frames) | env_out (envelopes) --check handle--> one write
 *
 * Input frames are handled in arrival order; a handler may close the connection, after which nothing
 * more is read or handled. Output queued in one loop iteration leaves in one write (uv_try_write, the
 * rest through uv_write), which is also what --fast relies on for batching. */
#include "conn.h"
#include "session.h"

#define READ_CHUNK 65536u
#define HIGH_WATER (8u << 20) /* stop reading a client that does not read its answers */
#define LOW_WATER (1u << 20)

typedef struct write_req_s {
  uv_write_t req;       /* libuv request; req.data unused */
  tdm_mock_conn_t *conn; /* connection written to (referenced until the callback) */
  uint8_t *data;        /* bytes being written (heap) */
  size_t len;           /* their count */
} write_req_t;

void tdm_mock_conn_ref(tdm_mock_conn_t *c) { c->refs++; }

void tdm_mock_conn_unref(tdm_mock_conn_t *c)
{
  TDM_ASSERT(c->refs > 0);
  if (--c->refs > 0) return;
  TDM_ASSERT(c->closing && !c->dirty);
  tdm_mock_buf_free(&c->in);
  tdm_mock_buf_free(&c->out);
  tdm_envelope_reader_free(&c->env_in);
  tdm_envelope_writer_free(&c->env_out);
  free(c);
}

static void on_close(uv_handle_t *h) { tdm_mock_conn_unref(h->data); }

void tdm_mock_conn_close(tdm_mock_conn_t *c, bool reset)
{
  if (c->closing) return;
  c->closing = true;
  tdm_mock_list_remove(&c->link);
  tdm_mock_session_close(c);
  if (reset && uv_tcp_close_reset(&c->tcp, on_close) == 0) return;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void mark_dirty(tdm_mock_conn_t *c)
{
  if (c->dirty || c->closing) return;
  c->dirty = true;
  c->next_dirty = c->mock->dirty;
  c->mock->dirty = c;
  tdm_mock_conn_ref(c);
}

int tdm_mock_conn_send(tdm_mock_conn_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len)
{
  if (c->closing) return TDM_ECLOSED;
  tdm_frame_header_t h = { .version = c->version, .response = true, .stream = stream, .opcode = opcode };
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  uint8_t *packed = NULL;
  int rc;
  if (c->framed) {
    h.length = (uint32_t)len;
    tdm_frame_header_encode(&h, hdr);
    rc = tdm_envelope_writer_add(&c->env_out, hdr, body, len);
  } else {
    if (c->compress_out && c->compression != TDM_COMPRESSION_NONE) {
      size_t plen;
      rc = tdm_body_compress(c->compression, body, len, &packed, &plen);
      if (rc) return rc;
      body = packed;
      len = plen;
      h.flags |= TDM_FLAG_COMPRESSED;
    }
    h.length = (uint32_t)len;
    size_t hlen = tdm_frame_header_encode(&h, hdr);
    rc = tdm_mock_buf_append(&c->out, hdr, hlen);
    if (!rc) rc = tdm_mock_buf_append(&c->out, body, len);
  }
  free(packed);
  if (rc) return rc;
  mark_dirty(c);
  return 0;
}

int tdm_mock_conn_send_encoded(tdm_mock_conn_t *c, const uint8_t *frame, size_t len, int16_t stream)
{
  if (c->closing) return TDM_ECLOSED;
  TDM_ASSERT(len >= TDM_ENVELOPE_HEADER);
  uint8_t hdr[TDM_ENVELOPE_HEADER];
  memcpy(hdr, frame, sizeof(hdr));
  tdm_frame_patch_stream(hdr, stream);
  int rc;
  if (c->framed) {
    rc = tdm_envelope_writer_add(&c->env_out, hdr, frame + sizeof(hdr), len - sizeof(hdr));
  } else {
    rc = tdm_mock_buf_append(&c->out, hdr, sizeof(hdr));
    if (!rc) rc = tdm_mock_buf_append(&c->out, frame + sizeof(hdr), len - sizeof(hdr));
  }
  if (rc) return rc;
  mark_dirty(c);
  return 0;
}

/* Moves sealed v5 segments behind what is already in out, keeping the byte order of the queue. */
static int seal_segments(tdm_mock_conn_t *c)
{
  if (!c->framed) return 0;
  uint8_t *p;
  size_t n;
  int rc = tdm_envelope_writer_take(&c->env_out, &p, &n);
  if (rc || !p) return rc;
  rc = tdm_mock_buf_append(&c->out, p, n);
  free(p);
  return rc;
}

int tdm_mock_conn_send_raw(tdm_mock_conn_t *c, const void *p, size_t n)
{
  if (c->closing) return TDM_ECLOSED;
  int rc = seal_segments(c);
  if (!rc) rc = tdm_mock_buf_append(&c->out, p, n);
  if (rc) return rc;
  mark_dirty(c);
  return 0;
}

int tdm_mock_conn_send_unframed(tdm_mock_conn_t *c, uint8_t version, int16_t stream, uint8_t opcode,
                                const uint8_t *body, size_t len)
{
  tdm_frame_header_t h = { .version = version, .response = true, .stream = stream, .opcode = opcode,
                           .length = (uint32_t)len };
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  if (tdm_proto_is_v2_header(version)) h.stream = (int16_t)TDM_MAX(TDM_MIN(stream, 127), -128);
  size_t hlen = tdm_frame_header_encode(&h, hdr);
  int rc = tdm_mock_conn_send_raw(c, hdr, hlen);
  if (!rc) rc = tdm_mock_conn_send_raw(c, body, len);
  return rc;
}

void tdm_mock_conn_start_framing(tdm_mock_conn_t *c)
{
  if (c->framed) return;
  c->framed = true;
  c->env_in.max_frame_bytes = TDM_MOCK_MAX_FRAME;
  c->env_in.lz4 = c->compression == TDM_COMPRESSION_LZ4;
  c->env_out.lz4 = c->compression == TDM_COMPRESSION_LZ4;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
  tdm_mock_conn_t *c = req->data;
  free(req);
  tdm_mock_conn_close(c, false);
  tdm_mock_conn_unref(c);
}

/* Closes after everything written so far has left: a shutdown waits for pending writes. */
static void close_when_written(tdm_mock_conn_t *c)
{
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    tdm_mock_conn_close(c, false);
    return;
  }
  req->data = c;
  tdm_mock_conn_ref(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
  write_req_t *w = (write_req_t *)req;
  tdm_mock_conn_t *c = w->conn;
  c->pending_write -= w->len;
  free(w->data);
  free(w);
  if (status < 0 && status != UV_ECANCELED) tdm_mock_conn_close(c, false);
  if (c->read_paused && !c->closing && c->pending_write < LOW_WATER &&
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->read_paused = false;
  tdm_mock_conn_unref(c);
}

static void flush(tdm_mock_conn_t *c)
{
  if (c->closing) return;
  if (seal_segments(c)) {
    tdm_mock_conn_close(c, false);
    return;
  }
  size_t n = tdm_mock_buf_size(&c->out);
  if (n > 0) {
    uint8_t *p = tdm_mock_buf_head(&c->out);
    size_t done = 0;
    if (c->pending_write == 0) {
      uv_buf_t b = uv_buf_init((char *)p, (unsigned)TDM_MIN(n, (size_t)UINT_MAX));
      int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
      if (w > 0) done = (size_t)w;
      else if (w < 0 && w != UV_EAGAIN) {
        tdm_mock_conn_close(c, false);
        return;
      }
    }
    if (done < n) {
      write_req_t *w = malloc(sizeof(*w));
      uint8_t *copy = malloc(n - done);
      if (!w || !copy) {
        free(w);
        free(copy);
        tdm_mock_conn_close(c, false);
        return;
      }
      memcpy(copy, p + done, n - done);
      *w = (write_req_t){ .conn = c, .data = copy, .len = n - done };
      uv_buf_t b = uv_buf_init((char *)copy, (unsigned)(n - done));
      if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(copy);
        free(w);
        tdm_mock_conn_close(c, false);
        return;
      }
      tdm_mock_conn_ref(c);
      c->pending_write += n - done;
      if (c->pending_write > HIGH_WATER && !c->read_paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->read_paused = true;
      }
    }
    tdm_mock_buf_consume(&c->out, n);
  }
  if (c->close_after_flush && !c->shutdown_sent) {
    c->shutdown_sent = true;
    close_when_written(c);
  }
}

void tdm_mock_conn_flush_all(tdm_mock_t *mock)
{
  while (mock->dirty) {
    tdm_mock_conn_t *c = mock->dirty;
    mock->dirty = c->next_dirty;
    c->next_dirty = NULL;
    c->dirty = false;
    flush(c);
    tdm_mock_conn_unref(c);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  tdm_mock_conn_t *c = h->data;
  if (tdm_mock_buf_reserve(&c->in, READ_CHUNK)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)TDM_MIN(c->in.cap - c->in.len, (size_t)UINT_MAX));
}

/* Decodes and handles every complete unframed frame in the input. Returns false to stop. */
static bool process_frame(tdm_mock_conn_t *c)
{
  tdm_frame_header_t h;
  const uint8_t *p = tdm_mock_buf_head(&c->in);
  size_t n = tdm_mock_buf_size(&c->in);
  int hlen = tdm_frame_header_decode(p, n, TDM_MOCK_MAX_FRAME, &h);
  if (hlen == 0) return false;
  if (hlen == TDM_EPROTO_TOO_LARGE) {
    if (tdm_mock_session_on_header(c, &h) < 0) return false;
    tdm_mock_session_error(c, h.stream, TDM_ERR_INVALID,
                           "Request is too big: length %u exceeds maximum allowed length %u.", h.length,
                           TDM_MOCK_MAX_FRAME);
    c->close_after_flush = true; /* the mock does not skip oversized bodies: it hangs up */
    return false;
  }
  if (hlen < 0) {
    tdm_mock_session_protocol_error(c, 0, "malformed frame header");
    return false;
  }
  if (tdm_mock_session_on_header(c, &h) < 0) return false;
  if (n - (size_t)hlen < h.length) return false;
  const uint8_t *body = p + hlen;
  size_t len = h.length;
  uint8_t *plain = NULL;
  tdm_mock_buf_consume(&c->in, (size_t)hlen + h.length); /* no move: body stays valid for this call */
  if ((h.flags & TDM_FLAG_COMPRESSED) && h.opcode != TDM_OP_STARTUP) {
    if (c->compression == TDM_COMPRESSION_NONE) {
      tdm_mock_session_protocol_error(c, h.stream, "compressed frame but no compression was negotiated");
      return false;
    }
    int rc = tdm_body_decompress(c->compression, body, len, TDM_MOCK_MAX_FRAME, &plain, &len);
    if (rc) {
      tdm_mock_session_protocol_error(c, h.stream, "cannot decompress the frame body");
      return false;
    }
    body = plain;
    h.flags &= (uint8_t)~TDM_FLAG_COMPRESSED;
  }
  tdm_mock_session_on_frame(c, &h, body, len);
  free(plain);
  return !c->closing;
}

/* Same for v5 envelopes. */
static bool process_envelope(tdm_mock_conn_t *c)
{
  tdm_envelope_t env;
  size_t consumed = 0;
  int rc = tdm_envelope_read(&c->env_in, tdm_mock_buf_head(&c->in), tdm_mock_buf_size(&c->in), &consumed, &env);
  tdm_mock_buf_consume(&c->in, consumed); /* no move: a borrowed envelope stays valid for this call */
  if (rc == 0) return false;
  if (rc == TDM_EPROTO_TOO_LARGE) {
    tdm_mock_session_error(c, env.header.stream, TDM_ERR_INVALID,
                           "Request is too big: length %u exceeds maximum allowed length %u.", env.header.length,
                           TDM_MOCK_MAX_FRAME);
    return true;
  }
  if (rc < 0) {
    tdm_mock_session_protocol_error(c, 0, rc == TDM_EPROTO_CRC ? "segment checksum mismatch" : "malformed segment");
    return false;
  }
  tdm_mock_session_on_frame(c, &env.header, env.body, env.header.length);
  return !c->closing;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  tdm_mock_conn_t *c = s->data;
  if (nread < 0) {
    tdm_mock_conn_close(c, false);
    return;
  }
  if (nread == 0 || c->closing) return;
  c->in.len += (size_t)nread;
  while (!c->closing && !c->close_after_flush && tdm_mock_buf_size(&c->in) > 0) {
    if (!(c->framed ? process_envelope(c) : process_frame(c))) break;
  }
}

int tdm_mock_conn_accept(tdm_mock_node_t *node)
{
  tdm_mock_t *mock = node->mock;
  tdm_mock_conn_t *c = calloc(1, sizeof(*c));
  if (!c) return TDM_ENOMEM;
  int rc = uv_tcp_init(&mock->loop, &c->tcp);
  if (rc) {
    free(c);
    return rc;
  }
  c->tcp.data = c;
  c->mock = mock;
  c->node = node;
  c->refs = 1;
  c->id = mock->next_conn_id++;
  tdm_mock_list_init(&c->timers);
  tdm_mock_list_push(&node->conns, &c->link);
  rc = uv_accept((uv_stream_t *)node->listener, (uv_stream_t *)&c->tcp);
  if (!rc) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc) {
    tdm_mock_conn_close(c, false);
    return rc;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
    else uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
             ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port));
  }
  mock->stats.nodes[node->index].connections_opened++;
  return 0;
}
