/* Unit tests for RESULT Rows and Prepared: metadata flags (global spec, paging state, NO_METADATA, v5
 * METADATA_CHANGED, DSE continuous paging), nested column types, the row/cell iterator, the Rows
 * builder, PREPARED ids and pk indices in v3/v4/v5, the hot-path peeks (kind, prepared ids, LWT
 * [applied], metadata id) and the metadata-id rewrite; every truncation of every body fails cleanly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <tandem/proto/response.h>

static const uint8_t versions[] = { TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5 };

/* ---- helpers ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
  size_t n = 0;
  int hi = -1;
  for (const char *p = hex; *p; p++) {
    int v;
    if (*p >= '0' && *p <= '9') v = *p - '0';
    else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
    else continue;
    if (hi < 0) {
      hi = v;
    } else {
      assert_true(n < cap);
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  assert_int_equal(hi, -1);
  return n;
}

static void check_truncations(uint8_t version, const uint8_t *body, size_t len)
{
  for (size_t k = 0; k < len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    if (k) memcpy(copy, body, k);
    tdm_response_t r;
    const char *why = NULL;
    int rc = tdm_response_decode(version, TDM_OP_RESULT, copy, k, &r, &why);
    if (rc != TDM_EPROTO_MALFORMED) fail_msg("prefix %zu/%zu v%u: rc %d", k, len, version, rc);
    assert_non_null(why);
    free(copy);
  }
}

static void decode_ok(uint8_t version, const uint8_t *body, size_t len, tdm_response_t *r)
{
  const char *why = NULL;
  int rc = tdm_response_decode(version, TDM_OP_RESULT, body, len, r, &why);
  if (rc) fail_msg("decode v%u: %d (%s)", version, rc, why ? why : "?");
}

/* Decoded -> encoded must give the same bytes back. */
static void check_reencode(const tdm_response_t *r, const uint8_t *body, size_t len)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode(&w, r), 0);
  assert_int_equal(w.len, len);
  assert_memory_equal(w.buf, body, len);
  tdm_writer_free(&w);
}

static void assert_str(tdm_str_t s, const char *want)
{
  if (!tdm_str_eq_cstr(s, want)) fail_msg("got '%.*s', want '%s'", (int)s.len, s.ptr ? s.ptr : "", want);
}

static void assert_type(const tdm_cqltype_t *t, const char *want)
{
  char buf[256];
  assert_true(tdm_cqltype_format(t, buf, sizeof(buf)) > 0);
  assert_string_equal(buf, want);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* ---- hand-written vectors ---- */

/* v4 Rows: global spec ks.t, columns k int and v list<text>, one row (1, ['a']). */
static void test_rows_vector(void **state)
{
  uint8_t b[128];
  size_t n = unhex("00000002 00000001 00000002 0002 6b73 0001 74"
                   "0001 6b 0009  0001 76 0020 000d"
                   "00000001  00000004 00000001  00000009 00000001 00000001 61",
                   b, sizeof(b));
  tdm_response_t r;
  decode_ok(TDM_PROTO_V4, b, n, &r);
  const tdm_response_rows_t *rows = &r.result.rows;
  assert_int_equal(rows->metadata.flags, TDM_RFLAG_GLOBAL_TABLES_SPEC);
  assert_int_equal(rows->metadata.flags_offset, 4);
  assert_int_equal(rows->metadata.columns_count, 2);
  assert_int_equal(rows->metadata.paging_state.len, -1);
  assert_int_equal(rows->metadata.new_metadata_id.len, -1);
  assert_int_equal(rows->rows_count, 1);
  assert_int_equal(be32(b + rows->rows_count_offset), 1);
  size_t pos = 0;
  tdm_response_column_t c;
  assert_int_equal(tdm_response_column_next(&rows->metadata, &pos, &c), 1);
  assert_str(c.keyspace, "ks");
  assert_str(c.table, "t");
  assert_str(c.name, "k");
  assert_type(&c.type, "int");
  assert_int_equal(tdm_response_column_next(&rows->metadata, &pos, &c), 1);
  assert_str(c.name, "v");
  assert_type(&c.type, "list<text>");
  assert_int_equal(tdm_response_column_next(&rows->metadata, &pos, &c), 0);
  tdm_response_rows_iter_t it;
  tdm_bytes_t cell;
  tdm_response_rows_iter_init(&it, rows);
  assert_int_equal(tdm_response_rows_next_row(&it), 1);
  assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
  assert_int_equal(cell.len, 4);
  assert_int_equal(be32(cell.ptr), 1);
  assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
  assert_int_equal(cell.len, 9);
  assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 0);
  assert_int_equal(tdm_response_rows_next_row(&it), 0);
  check_reencode(&r, b, n);
  check_truncations(TDM_PROTO_V4, b, n);
  tdm_response_applied_t applied;
  assert_int_equal(tdm_response_peek_rows_applied(TDM_PROTO_V4, b, n, &applied), 0);
  assert_int_equal(applied, TDM_RESPONSE_APPLIED_NONE);
  /* A rows count the body cannot hold is refused before walking cells. */
  b[rows->rows_count_offset] = 0x7f;
  const char *why = NULL;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "rows count exceeds the body");
}

/* v4 PREPARED: id abcd, one bind marker k int (pk index 0), NO_METADATA result. v5 adds a result
 * metadata id 010203 after the id. */
static void test_prepared_vectors(void **state)
{
  uint8_t b[128];
  tdm_response_t r;
  size_t n = unhex("00000004 0002 abcd"
                   "00000001 00000001 00000001 0000 0002 6b73 0001 74 0001 6b 0009"
                   "00000004 00000000",
                   b, sizeof(b));
  decode_ok(TDM_PROTO_V4, b, n, &r);
  const tdm_response_prepared_t *p = &r.result.prepared;
  assert_int_equal(p->id.len, 2);
  assert_int_equal(p->id_offset, 4);
  assert_int_equal(p->result_metadata_id.len, -1);
  assert_int_equal(p->variables.columns_count, 1);
  assert_int_equal(p->variables.pk_count, 1);
  assert_int_equal(tdm_response_pk_index(&p->variables, 0), 0);
  assert_int_equal(p->result.flags, TDM_RFLAG_NO_METADATA);
  assert_null(p->result.specs);
  check_reencode(&r, b, n);
  check_truncations(TDM_PROTO_V4, b, n);
  tdm_response_prepared_ids_t ids;
  assert_int_equal(tdm_response_peek_prepared_ids(TDM_PROTO_V4, b, n, &ids), 0);
  assert_int_equal(ids.id.len, 2);
  assert_int_equal(ids.id.ptr[0], 0xab);
  assert_int_equal(ids.result_metadata_id.len, -1);
  tdm_bytes_t mid;
  size_t off;
  assert_int_equal(tdm_response_peek_metadata_id(TDM_PROTO_V4, b, n, &mid, &off), TDM_ENOTFOUND);
  /* The same body in v3 has no pk indices, so its layout no longer adds up. */
  assert_int_equal(tdm_response_decode(TDM_PROTO_V3, TDM_OP_RESULT, b, n, &r, NULL), TDM_EPROTO_MALFORMED);

  n = unhex("00000004 0002 abcd 0003 010203"
            "00000001 00000001 00000001 0000 0002 6b73 0001 74 0001 6b 0009"
            "00000004 00000000",
            b, sizeof(b));
  decode_ok(TDM_PROTO_V5, b, n, &r);
  assert_int_equal(r.result.prepared.result_metadata_id.len, 3);
  assert_int_equal(r.result.prepared.result_metadata_id_offset, 8);
  check_reencode(&r, b, n);
  check_truncations(TDM_PROTO_V5, b, n);
  assert_int_equal(tdm_response_peek_prepared_ids(TDM_PROTO_V5, b, n, &ids), 0);
  assert_int_equal(ids.result_metadata_id_offset, 8);
  assert_int_equal(ids.result_metadata_id.ptr[2], 3);
  assert_int_equal(tdm_response_peek_metadata_id(TDM_PROTO_V5, b, n, &mid, &off), 0);
  assert_int_equal(off, 8);
  /* Prepared ids are not there in other kinds. */
  uint8_t v[4] = { 0, 0, 0, 1 };
  assert_int_equal(tdm_response_peek_prepared_ids(TDM_PROTO_V5, v, 4, &ids), TDM_EINVAL);
}

/* DSE continuous paging puts a page number after the optional ids; other versions ignore the flag. */
static void test_dse_continuous_paging(void **state)
{
  uint8_t b[64];
  tdm_response_t r;
  size_t n = unhex("00000002 40000004 00000001 00000003 00000001 00000001 01", b, sizeof(b));
  decode_ok(TDM_PROTO_DSE_V1, b, n, &r);
  assert_int_equal(r.result.rows.metadata.continuous_page, 3);
  assert_int_equal(r.result.rows.rows_count, 1);
  check_reencode(&r, b, n);
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
}

/* METADATA_CHANGED means nothing before v5: the flag is kept, no id is read. */
static void test_metadata_changed_ignored_in_v4(void **state)
{
  uint8_t b[64];
  tdm_response_t r;
  size_t n = unhex("00000002 0000000c 00000001 00000000", b, sizeof(b));
  decode_ok(TDM_PROTO_V4, b, n, &r);
  assert_int_equal(r.result.rows.metadata.new_metadata_id.len, -1);
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_RESULT, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
}

/* ---- nested types ---- */

/* UDT ks.addr { street text, zip int }. */
static const char udt_hex[] = "0030 0002 6b73 0004 61646472 0002 0006 737472656574 000d 0003 7a6970 0009";

static void test_rows_nested_types(void **state)
{
  uint8_t udt[64], listudt[80], mapt[64], custom[96], tuple[96];
  size_t udt_len = unhex(udt_hex, udt, sizeof(udt));
  listudt[0] = 0x00;
  listudt[1] = 0x20;
  memcpy(listudt + 2, udt, udt_len);
  tdm_response_column_t cols[5] = {
    { .name = TDM_STR("addrs") }, { .name = TDM_STR("m") }, { .name = TDM_STR("vec") },
    { .name = TDM_STR("tup") },   { .name = TDM_STR("u") },
  };
  assert_int_equal(tdm_cqltype_from_raw(listudt, udt_len + 2, &cols[0].type), 0);
  assert_int_equal(tdm_cqltype_parse(TDM_STR("map<text, frozen<map<int, set<uuid>>>>"), mapt, sizeof(mapt),
                                     &cols[1].type), 0);
  assert_int_equal(tdm_cqltype_parse(TDM_STR("'org.apache.cassandra.db.marshal.VectorType("
                                             "org.apache.cassandra.db.marshal.FloatType,3)'"),
                                     custom, sizeof(custom), &cols[2].type), 0);
  assert_int_equal(tdm_cqltype_parse(TDM_STR("tuple<int, list<blob>, duration>"), tuple, sizeof(tuple),
                                     &cols[3].type), 0);
  assert_int_equal(tdm_cqltype_from_raw(udt, udt_len, &cols[4].type), 0);

  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_writer_t w;
    tdm_response_rows_builder_t b;
    tdm_writer_init(&w);
    tdm_response_rows_options_t opts = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = TDM_STR("ks"),
                                         .table = TDM_STR("people") };
    tdm_response_rows_begin(&b, &w, v, &opts);
    for (int i = 0; i < 5; i++) tdm_response_rows_column(&b, &cols[i]);
    for (int row = 0; row < 3; row++)
      for (int i = 0; i < 5; i++) {
        uint8_t blob[3] = { (uint8_t)row, (uint8_t)i, 0xee };
        if (i == 2) tdm_response_rows_cell_null(&b);
        else tdm_response_rows_cell(&b, blob, 3);
      }
    assert_int_equal(tdm_response_rows_finish(&b), 0);
    uint8_t *body;
    size_t len;
    assert_int_equal(tdm_writer_take(&w, &body, &len), 0);

    tdm_response_t r;
    decode_ok(v, body, len, &r);
    const tdm_response_metadata_t *m = &r.result.rows.metadata;
    static const char *const want[] = {
      "list<ks.addr>", "map<text, map<int, set<uuid>>>",
      "'org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType,3)'",
      "tuple<int, list<blob>, duration>", "ks.addr",
    };
    size_t pos = 0;
    tdm_response_column_t c;
    for (int i = 0; i < 5; i++) {
      assert_int_equal(tdm_response_column_next(m, &pos, &c), 1);
      assert_str(c.keyspace, "ks");
      assert_str(c.table, "people");
      assert_true(tdm_str_eq(c.name, cols[i].name));
      assert_true(tdm_cqltype_eq(&c.type, &cols[i].type));
      assert_type(&c.type, want[i]);
    }
    assert_int_equal(tdm_response_column_next(m, &pos, &c), 0);
    /* Walk the UDT inside the list. */
    pos = 0;
    assert_int_equal(tdm_response_column_next(m, &pos, &c), 1);
    tdm_cqltype_t elem, field;
    tdm_str_t fname, ks, name;
    assert_int_equal(tdm_cqltype_child(&c.type, 0, &elem, NULL), 0);
    assert_int_equal(elem.id, TDM_CQLTYPE_UDT);
    assert_int_equal(tdm_cqltype_udt_name(&elem, &ks, &name), 0);
    assert_str(name, "addr");
    assert_int_equal(tdm_cqltype_child_count(&elem), 2);
    assert_int_equal(tdm_cqltype_child(&elem, 1, &field, &fname), 0);
    assert_str(fname, "zip");
    assert_int_equal(field.id, TDM_CQLTYPE_INT);

    tdm_response_rows_iter_t it;
    tdm_bytes_t cell;
    int rows = 0, cells = 0;
    tdm_response_rows_iter_init(&it, &r.result.rows);
    while (tdm_response_rows_next_row(&it) == 1) {
      int i = 0;
      while (tdm_response_rows_next_cell(&it, &cell) == 1) {
        if (i == 2) {
          assert_int_equal(cell.len, -1);
        } else {
          assert_int_equal(cell.len, 3);
          assert_int_equal(cell.ptr[0], rows);
          assert_int_equal(cell.ptr[1], i);
        }
        i++;
        cells++;
      }
      assert_int_equal(i, 5);
      rows++;
    }
    assert_int_equal(rows, 3);
    assert_int_equal(cells, 15);
    check_reencode(&r, body, len);
    check_truncations(v, body, len);
    free(body);
  }
}

/* ---- paging, NO_METADATA, METADATA_CHANGED ---- */

static void test_rows_paging_no_metadata_changed(void **state)
{
  static const uint8_t paging[] = { 0x00, 0x11, 0x22, 0x33, 0x44 };
  static const uint8_t md_id[16] = { 0x5e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xf5 };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    for (int variant = 0; variant < 3; variant++) {
      tdm_writer_t w;
      tdm_response_rows_builder_t b;
      tdm_response_rows_options_t opts = { .flags = TDM_RFLAG_HAS_MORE_PAGES, .paging_state = { paging, 5 } };
      if (variant == 1) {
        opts.flags |= TDM_RFLAG_NO_METADATA;
        opts.columns_count = 2;
      }
      if (variant == 2) {
        opts.flags |= TDM_RFLAG_METADATA_CHANGED;
        opts.new_metadata_id = (tdm_bytes_t){ md_id, 16 };
      }
      tdm_writer_init(&w);
      tdm_response_rows_begin(&b, &w, v, &opts);
      if (variant != 1) {
        tdm_response_column_t c1 = { TDM_STR("ks"), TDM_STR("t1"), TDM_STR("a"), { 0 } };
        tdm_response_column_t c2 = { TDM_STR("ks"), TDM_STR("t2"), TDM_STR("b"), { 0 } };
        assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_BIGINT, &c1.type), 0);
        assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_VARCHAR, &c2.type), 0);
        tdm_response_rows_column(&b, &c1);
        tdm_response_rows_column(&b, &c2);
      }
      tdm_response_rows_cell_bigint(&b, -5);
      tdm_response_rows_cell_text(&b, TDM_STR("x"));
      assert_int_equal(tdm_response_rows_finish(&b), 0);
      uint8_t *body;
      size_t len;
      assert_int_equal(tdm_writer_take(&w, &body, &len), 0);

      tdm_response_t r;
      decode_ok(v, body, len, &r);
      const tdm_response_metadata_t *m = &r.result.rows.metadata;
      assert_int_equal(m->paging_state.len, 5);
      assert_memory_equal(m->paging_state.ptr, paging, 5);
      assert_int_equal(m->columns_count, 2);
      assert_int_equal(r.result.rows.rows_count, 1);
      size_t pos = 0;
      tdm_response_column_t c;
      if (variant == 1) {
        assert_true(m->flags & TDM_RFLAG_NO_METADATA);
        assert_null(m->specs);
        assert_int_equal(tdm_response_column_next(m, &pos, &c), 0);
      } else {
        /* Per-column table specs (no global spec). */
        assert_int_equal(tdm_response_column_next(m, &pos, &c), 1);
        assert_str(c.table, "t1");
        assert_int_equal(tdm_response_column_next(m, &pos, &c), 1);
        assert_str(c.table, "t2");
      }
      tdm_bytes_t id;
      size_t off;
      int rc = tdm_response_peek_metadata_id(v, body, len, &id, &off);
      if (variant == 2 && v == TDM_PROTO_V5) {
        assert_true(m->flags & TDM_RFLAG_METADATA_CHANGED);
        assert_int_equal(m->new_metadata_id.len, 16);
        assert_memory_equal(m->new_metadata_id.ptr, md_id, 16);
        assert_int_equal(rc, 0);
        assert_int_equal(off, m->new_metadata_id_offset);
        assert_int_equal(body[off + 1], 16);
        /* Rewrite with an id of another length; everything else is unchanged. */
        static const uint8_t other[20] = { 0xaa, [19] = 0xbb };
        tdm_writer_t w2;
        tdm_writer_init(&w2);
        assert_int_equal(tdm_response_rewrite_metadata_id(v, body, len, other, 20, &w2), 0);
        tdm_response_t r2;
        decode_ok(v, w2.buf, w2.len, &r2);
        assert_int_equal(r2.result.rows.metadata.new_metadata_id.len, 20);
        assert_memory_equal(r2.result.rows.metadata.new_metadata_id.ptr, other, 20);
        assert_int_equal(w2.len, len + 4);
        assert_memory_equal(w2.buf + off + 22, body + off + 18, len - off - 18);
        tdm_writer_free(&w2);
      } else {
        /* The builder drops METADATA_CHANGED where the version has no ids. */
        assert_false(m->flags & TDM_RFLAG_METADATA_CHANGED);
        assert_int_equal(m->new_metadata_id.len, -1);
        assert_int_equal(rc, TDM_ENOTFOUND);
        tdm_writer_t w2;
        tdm_writer_init(&w2);
        assert_int_equal(tdm_response_rewrite_metadata_id(v, body, len, md_id, 16, &w2), TDM_ENOTFOUND);
        tdm_writer_free(&w2);
      }
      tdm_response_rows_iter_t it;
      tdm_bytes_t cell;
      tdm_response_rows_iter_init(&it, &r.result.rows);
      assert_int_equal(tdm_response_rows_next_row(&it), 1);
      assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
      assert_int_equal(cell.len, 8);
      assert_int_equal(cell.ptr[7], 0xfb);
      /* Skipping the rest of a row is allowed. */
      assert_int_equal(tdm_response_rows_next_row(&it), 0);
      check_reencode(&r, body, len);
      check_truncations(v, body, len);
      free(body);
    }
  }
}

/* ---- PREPARED ---- */

static void test_prepared_roundtrip(void **state)
{
  static const uint8_t id[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 7 };
  static const uint8_t rmid[16] = { 0xfe, 0xdc, [15] = 0x99 };
  static const uint16_t pk[] = { 2, 0, 1 };
  tdm_response_column_t vars[3] = { { .name = TDM_STR("c") }, { .name = TDM_STR("a") }, { .name = TDM_STR("b") } };
  tdm_response_column_t res[2] = { { .name = TDM_STR("[applied]") }, { .name = TDM_STR("tags") } };
  uint8_t settext[16];
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_INT, &vars[0].type), 0);
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_UUID, &vars[1].type), 0);
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_TIMEUUID, &vars[2].type), 0);
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_BOOLEAN, &res[0].type), 0);
  assert_int_equal(tdm_cqltype_parse(TDM_STR("set<text>"), settext, sizeof(settext), &res[1].type), 0);
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_response_t in = { .version = v, .opcode = TDM_OP_RESULT, .result = { .kind = TDM_RESULT_PREPARED } }, out;
    tdm_response_prepared_t *p = &in.result.prepared;
    p->id = (tdm_bytes_t){ id, 16 };
    p->result_metadata_id = (tdm_bytes_t){ rmid, 16 };
    p->variables = (tdm_response_metadata_t){ .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .columns_count = 3,
                                              .global_keyspace = TDM_STR("ks"), .global_table = TDM_STR("t"),
                                              .pk_count = 3, .pk_indices = pk, .columns = vars };
    p->result = (tdm_response_metadata_t){ .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .columns_count = 2,
                                           .global_keyspace = TDM_STR("ks"), .global_table = TDM_STR("t"),
                                           .columns = res };
    tdm_writer_t w;
    uint8_t *body;
    size_t len;
    tdm_writer_init(&w);
    assert_int_equal(tdm_response_encode(&w, &in), 0);
    assert_int_equal(tdm_writer_take(&w, &body, &len), 0);
    decode_ok(v, body, len, &out);
    const tdm_response_prepared_t *q = &out.result.prepared;
    assert_int_equal(q->id.len, 16);
    assert_memory_equal(q->id.ptr, id, 16);
    assert_int_equal(q->id_offset, 4);
    if (v == TDM_PROTO_V5) {
      assert_int_equal(q->result_metadata_id.len, 16);
      assert_memory_equal(body + q->result_metadata_id_offset + 2, rmid, 16);
    } else {
      assert_int_equal(q->result_metadata_id.len, -1);
    }
    assert_int_equal(q->variables.columns_count, 3);
    assert_int_equal(q->variables.pk_count, v >= TDM_PROTO_V4 ? 3 : 0);
    for (uint32_t i = 0; i < q->variables.pk_count; i++) assert_int_equal(tdm_response_pk_index(&q->variables, i), pk[i]);
    size_t pos = 0;
    tdm_response_column_t c;
    for (int i = 0; i < 3; i++) {
      assert_int_equal(tdm_response_column_next(&q->variables, &pos, &c), 1);
      assert_true(tdm_str_eq(c.name, vars[i].name));
      assert_true(tdm_cqltype_eq(&c.type, &vars[i].type));
    }
    pos = 0;
    assert_int_equal(tdm_response_column_next(&q->result, &pos, &c), 1);
    assert_int_equal(tdm_response_column_next(&q->result, &pos, &c), 1);
    assert_type(&c.type, "set<text>");
    check_reencode(&out, body, len);
    /* Truncated PREPARED, at every point. */
    check_truncations(v, body, len);

    if (v == TDM_PROTO_V5) {
      /* Translate the result metadata id into one of another length. */
      static const uint8_t other[4] = { 9, 8, 7, 6 };
      tdm_writer_t w2;
      tdm_writer_init(&w2);
      assert_int_equal(tdm_response_rewrite_metadata_id(v, body, len, other, 4, &w2), 0);
      tdm_response_t r2;
      decode_ok(v, w2.buf, w2.len, &r2);
      assert_int_equal(r2.result.prepared.result_metadata_id.len, 4);
      assert_memory_equal(r2.result.prepared.result_metadata_id.ptr, other, 4);
      assert_memory_equal(r2.result.prepared.id.ptr, id, 16);
      assert_int_equal(r2.result.prepared.variables.pk_count, 3);
      tdm_writer_free(&w2);
    }
    free(body);
  }
}

/* ---- LWT ---- */

static void build_lwt(uint8_t v, uint32_t flags, int value, int rows, tdm_writer_t *w)
{
  tdm_response_rows_builder_t b;
  tdm_response_rows_options_t opts = { .flags = flags | TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = TDM_STR("ks"),
                                       .table = TDM_STR("t"), .columns_count = 2 };
  tdm_writer_init(w);
  tdm_response_rows_begin(&b, w, v, &opts);
  if (!(flags & TDM_RFLAG_NO_METADATA)) {
    tdm_response_rows_column_named(&b, TDM_STR("[applied]"), TDM_STR("boolean"));
    tdm_response_rows_column_named(&b, TDM_STR("v"), TDM_STR("int"));
  }
  for (int i = 0; i < rows; i++) {
    if (value < 0) tdm_response_rows_cell_null(&b);
    else tdm_response_rows_cell_boolean(&b, value != 0);
    tdm_response_rows_cell_int(&b, 42);
  }
  assert_int_equal(tdm_response_rows_finish(&b), 0);
}

static void test_peek_rows_applied(void **state)
{
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_writer_t w;
    tdm_response_applied_t a;
    build_lwt(v, 0, 1, 1, &w);
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len, &a), 0);
    assert_int_equal(a, TDM_RESPONSE_APPLIED_TRUE);
    tdm_writer_free(&w);
    build_lwt(v, 0, 0, 1, &w);
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len, &a), 0);
    assert_int_equal(a, TDM_RESPONSE_APPLIED_FALSE);
    /* A truncated first cell is malformed, not a guess. */
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len - 9, &a), TDM_EPROTO_MALFORMED);
    tdm_writer_free(&w);
    build_lwt(v, 0, -1, 1, &w);
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len, &a), 0);
    assert_int_equal(a, TDM_RESPONSE_APPLIED_UNKNOWN);
    tdm_writer_free(&w);
    build_lwt(v, 0, 1, 0, &w);
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len, &a), 0);
    assert_int_equal(a, TDM_RESPONSE_APPLIED_UNKNOWN);
    tdm_writer_free(&w);
    build_lwt(v, TDM_RFLAG_NO_METADATA, 1, 1, &w);
    assert_int_equal(tdm_response_peek_rows_applied(v, w.buf, w.len, &a), 0);
    assert_int_equal(a, TDM_RESPONSE_APPLIED_UNKNOWN);
    tdm_writer_free(&w);
  }
  /* A Void result is not an LWT answer. */
  uint8_t vb[4] = { 0, 0, 0, 1 };
  tdm_response_applied_t a = TDM_RESPONSE_APPLIED_TRUE;
  assert_int_equal(tdm_response_peek_rows_applied(TDM_PROTO_V4, vb, 4, &a), 0);
  assert_int_equal(a, TDM_RESPONSE_APPLIED_NONE);
}

/* ---- builder: a system.local-like row ---- */

static void test_builder_system_local(void **state)
{
  static const uint8_t host_id[16] = { 0x6f, 0x1a, [6] = 0x50, [15] = 0x42 };
  static const uint8_t ip[4] = { 10, 1, 2, 3 };
  static const tdm_str_t tokens[] = { TDM_STR("-9223372036854775808"), TDM_STR("0") };
  static const tdm_str_t mk[] = { TDM_STR("a"), TDM_STR("bb") };
  static const tdm_str_t mv[] = { TDM_STR("1"), TDM_STR("") };
  static const struct {
    const char *name, *type;
  } cols[] = {
    { "key", "text" },      { "host_id", "uuid" },   { "rpc_address", "inet" }, { "rpc_port", "int" },
    { "tokens", "set<text>" }, { "options", "map<text, text>" }, { "seen", "list<varchar>" },
    { "gossip_generation", "bigint" }, { "bootstrapped", "boolean" }, { "now", "timeuuid" },
  };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_writer_t w;
    tdm_response_rows_builder_t b;
    tdm_response_rows_options_t opts = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = TDM_STR("system"),
                                         .table = TDM_STR("local") };
    tdm_writer_init(&w);
    tdm_response_rows_begin(&b, &w, v, &opts);
    for (size_t i = 0; i < TDM_ARRAY_SIZE(cols); i++)
      tdm_response_rows_column_named(&b, tdm_str_from(cols[i].name), tdm_str_from(cols[i].type));
    tdm_response_rows_cell_text(&b, TDM_STR("local"));
    tdm_response_rows_cell_uuid(&b, host_id);
    tdm_response_rows_cell_inet(&b, ip, 4);
    tdm_response_rows_cell_int(&b, 9042);
    tdm_response_rows_cell_text_list(&b, tokens, 2);
    tdm_response_rows_cell_text_map(&b, mk, mv, 2);
    tdm_response_rows_cell_text_list(&b, NULL, 0);
    tdm_response_rows_cell_bigint(&b, 1700000000);
    tdm_response_rows_cell_boolean(&b, true);
    tdm_response_rows_cell_uuid(&b, host_id);
    assert_int_equal(tdm_response_rows_finish(&b), 0);

    tdm_response_t r;
    decode_ok(v, w.buf, w.len, &r);
    assert_int_equal(r.result.rows.metadata.columns_count, (int32_t)TDM_ARRAY_SIZE(cols));
    assert_int_equal(r.result.rows.rows_count, 1);
    size_t pos = 0;
    tdm_response_column_t c;
    static const char *const formatted[] = { "text", "uuid", "inet", "int", "set<text>", "map<text, text>",
                                             "list<text>", "bigint", "boolean", "timeuuid" };
    for (size_t i = 0; i < TDM_ARRAY_SIZE(cols); i++) {
      assert_int_equal(tdm_response_column_next(&r.result.rows.metadata, &pos, &c), 1);
      assert_str(c.name, cols[i].name);
      assert_str(c.keyspace, "system");
      assert_type(&c.type, formatted[i]);
    }
    tdm_response_rows_iter_t it;
    tdm_bytes_t cell;
    tdm_response_rows_iter_init(&it, &r.result.rows);
    assert_int_equal(tdm_response_rows_next_row(&it), 1);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 5);
    assert_memory_equal(cell.ptr, "local", 5);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_memory_equal(cell.ptr, host_id, 16);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 4);
    assert_memory_equal(cell.ptr, ip, 4);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(be32(cell.ptr), 9042);
    /* set<text>: [int] 2, [bytes] "-9223372036854775808", [bytes] "0". */
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 4 + 4 + 20 + 4 + 1);
    assert_int_equal(be32(cell.ptr), 2);
    assert_int_equal(be32(cell.ptr + 4), 20);
    assert_int_equal(cell.ptr[cell.len - 1], '0');
    /* map<text,text>: 2 entries, the last value empty (not null). */
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 4 + (4 + 1) + (4 + 1) + (4 + 2) + (4 + 0));
    assert_int_equal(be32(cell.ptr + cell.len - 4), 0);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 4);
    assert_int_equal(be32(cell.ptr), 0);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 8);
    assert_int_equal(be32(cell.ptr + 4), 1700000000);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(cell.len, 1);
    assert_int_equal(cell.ptr[0], 1);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 1);
    assert_int_equal(tdm_response_rows_next_cell(&it, &cell), 0);
    assert_int_equal(tdm_response_rows_next_row(&it), 0);
    check_truncations(v, w.buf, w.len);
    tdm_writer_free(&w);
  }
}

static void test_builder_misuse(void **state)
{
  tdm_writer_t w;
  tdm_response_rows_builder_t b;
  /* A partial last row. */
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, NULL);
  tdm_response_rows_column_named(&b, TDM_STR("a"), TDM_STR("int"));
  tdm_response_rows_column_named(&b, TDM_STR("b"), TDM_STR("int"));
  tdm_response_rows_cell_int(&b, 1);
  assert_int_equal(tdm_response_rows_finish(&b), TDM_EINVAL);
  tdm_writer_free(&w);
  /* A column after a cell. */
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, NULL);
  tdm_response_rows_column_named(&b, TDM_STR("a"), TDM_STR("int"));
  tdm_response_rows_cell_int(&b, 1);
  tdm_response_rows_column_named(&b, TDM_STR("b"), TDM_STR("int"));
  assert_int_equal(tdm_response_rows_finish(&b), TDM_EINVAL);
  tdm_writer_free(&w);
  /* A type that does not parse, and a UDT name (not expressible as text). */
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, NULL);
  tdm_response_rows_column_named(&b, TDM_STR("a"), TDM_STR("map<text>"));
  assert_int_equal(tdm_response_rows_finish(&b), TDM_EINVAL);
  tdm_writer_free(&w);
  /* A cell with no columns. */
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, NULL);
  tdm_response_rows_cell_int(&b, 1);
  assert_int_equal(tdm_response_rows_finish(&b), TDM_EINVAL);
  tdm_writer_free(&w);
  /* Zero columns and zero rows is a valid (empty) result. */
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, NULL);
  assert_int_equal(tdm_response_rows_finish(&b), 0);
  tdm_response_t r;
  decode_ok(TDM_PROTO_V4, w.buf, w.len, &r);
  assert_int_equal(r.result.rows.rows_count, 0);
  tdm_writer_free(&w);
}

/* Rows with zero columns but a positive count would make iteration unbounded by the body. */
static void test_rows_without_columns(void **state)
{
  uint8_t b[32];
  tdm_response_t r;
  const char *why = NULL;
  size_t n = unhex("00000002 00000004 00000000 7fffffff", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "rows without columns");
  n = unhex("00000002 00000000 7fffffff", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "column count exceeds the body");
  n = unhex("00000002 00000000 ffffffff", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "negative column count");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rows_vector),
    cmocka_unit_test(test_prepared_vectors),
    cmocka_unit_test(test_dse_continuous_paging),
    cmocka_unit_test(test_metadata_changed_ignored_in_v4),
    cmocka_unit_test(test_rows_nested_types),
    cmocka_unit_test(test_rows_paging_no_metadata_changed),
    cmocka_unit_test(test_prepared_roundtrip),
    cmocka_unit_test(test_peek_rows_applied),
    cmocka_unit_test(test_builder_system_local),
    cmocka_unit_test(test_builder_misuse),
    cmocka_unit_test(test_rows_without_columns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
