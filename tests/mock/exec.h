/* What a served request does by default: QUERY / EXECUTE / BATCH statements (system tables, the
 * key/value store, USE, DDL with schema versions and events, Void for the rest), PREPARE with bind and
 * result metadata, UNPREPARED for unknown ids, and canned Rows for rules. Answers go out through
 * tdm_mock_conn_send (or the --fast reply cache). */
#ifndef TDM_MOCK_EXEC_H
#define TDM_MOCK_EXEC_H

#include <tandem/proto/request.h>

#include "conn.h"
#include "rules.h"

void tdm_mock_exec_query(tdm_mock_conn_t *c, int16_t stream, const tdm_query_t *q);
void tdm_mock_exec_prepare(tdm_mock_conn_t *c, int16_t stream, const tdm_prepare_t *p);
void tdm_mock_exec_execute(tdm_mock_conn_t *c, int16_t stream, const tdm_execute_t *e);
void tdm_mock_exec_batch(tdm_mock_conn_t *c, int16_t stream, const tdm_batch_t *b);
/* RESULT Rows from a rule's columns and rows. */
void tdm_mock_exec_rule_rows(tdm_mock_conn_t *c, int16_t stream, const tdm_mock_rule_t *rule);
/* RESULT Void. */
void tdm_mock_exec_void(tdm_mock_conn_t *c, int16_t stream);
/* ERROR UNPREPARED for id, with Cassandra's message. */
void tdm_mock_exec_unprepared(tdm_mock_conn_t *c, int16_t stream, const uint8_t *id, size_t id_len);
/* Sends EVENT SCHEMA_CHANGE to every connection of the cluster registered for it. */
void tdm_mock_exec_schema_event(tdm_mock_t *mock, const tdm_response_schema_change_t *sc);

#endif
