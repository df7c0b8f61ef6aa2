/*
 * params_list.h - every parameter relayq knows, written once
 *
 * PARAMS_LIST(X) calls X(KIND, name, default, ...) for each parameter, in
 * the table's order: KIND is STR, INT, TIME, SIZE, BOOL or ENUM, name the
 * parameter's name as an identifier, then the default as written in the
 * file and the bounds or the check (params.c). params.c expands it into
 * params_table[]; params.h into the names var_str(), var_int() and
 * var_bool() accept, so that a misspelt name, or a name read as the wrong
 * type, does not compile. Names and defaults follow Postfix where Postfix
 * has the parameter.
 */
#ifndef RELAYQ_PARAMS_LIST_H
#define RELAYQ_PARAMS_LIST_H

#define PARAMS_LIST(X)                                                                             \
    X(STR, queue_directory, "/var/spool/relayq", params_check_abspath)                             \
    X(STR, daemon_directory, DAEMON_DIRECTORY, params_check_abspath)                               \
    X(STR, mail_owner, "relayq", params_check_nonempty)                                            \
    X(STR, setgid_group, "relayqdrop", params_check_nonempty)                                      \
    X(STR, authorized_mailq_users, "anyone", NULL)                                                 \
    X(STR, myhostname, "", params_check_hostname)                                                  \
    X(STR, myorigin, "$myhostname", NULL)                                                          \
    X(STR, relayhost, "", params_check_relay)                                                      \
    X(STR, smtp_helo_name, "$myhostname", params_check_helo)                                       \
    X(INT, smtpout_workers, "4", 1, 256)                                                           \
    X(INT, smtpout_sessions_per_worker, "8", 1, 64)                                                \
    X(INT, default_destination_concurrency_limit, "20", 1, 1000)                                   \
    X(INT, default_destination_recipient_limit, "50", 1, 10000)                                    \
    X(STR, destination_rate_limit, "0", params_check_rate) /* msg/s; 0: no limit */                \
    X(TIME, default_destination_rate_delay, "0s", 0, 3600)                                         \
    X(TIME, destination_probe_interval, "10s", 1, 300)                                             \
    X(INT, smtp_connection_reuse_count_limit, "1000", 0, 1000000000) /* 0: no limit */             \
    X(TIME, smtp_connection_reuse_time_limit, "300s", 0, 7 * DAY)                                  \
    X(TIME, smtp_keepalive_interval, "60s", 0, DAY)                                                \
    X(TIME, smtp_connection_idle_timeout, "300s", 1, DAY)                                          \
    X(TIME, smtp_connect_timeout, "30s", 1, 3600)                                                  \
    X(INT, smtp_mx_address_limit, "5", 1, 100) /* addresses tried per connection */                \
    X(ENUM, inet_protocols, "all", "all,ipv4,ipv6")                                                \
    X(TIME, smtp_helo_timeout, "300s", 1, 3600)                                                    \
    X(TIME, smtp_mail_timeout, "300s", 1, 3600)                                                    \
    X(TIME, smtp_rcpt_timeout, "300s", 1, 3600)                                                    \
    X(TIME, smtp_data_init_timeout, "120s", 1, 3600)                                               \
    X(TIME, smtp_data_xfer_timeout, "180s", 1, 3600)                                               \
    X(TIME, smtp_data_done_timeout, "600s", 1, 3600)                                               \
    X(TIME, smtp_quit_timeout, "300s", 1, 3600)                                                    \
    X(TIME, smtp_starttls_timeout, "300s", 1, 3600)                                                \
    X(ENUM, smtp_tls_security_level, "may", "none,may,encrypt,verify")                             \
    X(STR, smtp_tls_CAfile, "", NULL)                                                              \
    X(BOOL, smtp_tls_wrappermode, "no")                                                            \
    X(STR, smtp_tls_policy_maps, "", NULL)                                                         \
    X(BOOL, smtp_use_chunking, "yes")                                                              \
    X(BOOL, smtp_sasl_auth_enable, "no")                                                           \
    X(STR, smtp_sasl_password_maps, "", NULL)                                                      \
    X(TIME, smtp_sasl_auth_failure_suspend, "60s", 1, DAY)                                         \
    X(TIME, minimal_backoff_time, "300s", 1, 30 * DAY)                                             \
    X(TIME, maximal_backoff_time, "4000s", 1, 30 * DAY)                                            \
    X(TIME, queue_run_delay, "300s", 1, DAY)                                                       \
    X(TIME, maximal_queue_lifetime, "5d", 0, 365 * DAY)                                            \
    X(TIME, bounce_queue_lifetime, "5d", 0, 365 * DAY)                                             \
    X(TIME, delay_warning_time, "0h", 0, 365 * DAY) /* 0: no delay notices */                      \
    X(SIZE, bounce_size_limit, "50000", 1, 1073741824L)                                            \
    X(SIZE, message_size_limit, "10240000", 0, 1073741824L) /* 0: no limit */                      \
    X(SIZE, header_size_limit, "102400", 1024, 1073741824L)                                        \
    X(INT, qmgr_message_active_limit, "20000", 1, 10000000)                                        \
    X(INT, qmgr_message_recipient_limit, "20000", 1, 10000000)                                     \
    X(SIZE, queue_map_size, "1g", 1048576L, 1099511627776L)                                        \
    X(STR, queue_encryption_key_file, "", NULL) /* "": queue in the clear */                       \
    X(STR, transport_maps, "", NULL)                                                               \
    X(STR, sender_dependent_relayhost_maps, "", NULL)                                              \
    X(STR, destination_policy_maps, "", NULL)                                                      \
    X(STR, shared_limits_server, "", params_check_shared_server) /* "": limits per instance */     \
    X(STR, shared_limits_fallback_share, "", params_check_share) /* "": 1/instances seen */        \
    X(STR, maillog_file, "", NULL)                                                                 \
    X(STR, syslog_name, "relayq", params_check_syslog_name)                                        \
    X(STR, smtpd_listen, "127.0.0.1:25, [::1]:25", params_check_listen) /* "": no listener */      \
    X(STR, mynetworks, "127.0.0.0/8 [::1]/128", params_check_mynetworks)                           \
    X(INT, smtpd_connection_limit, "100", 1, 10000)                                                \
    X(INT, smtpd_client_connection_count_limit, "50", 1, 10000)                                    \
    X(INT, smtpd_recipient_limit, "1000", 1, 100000)                                               \
    X(TIME, smtpd_timeout, "300s", 1, 3600)                                                        \
    X(INT, smtpd_hard_error_limit, "20", 1, 1000)                                                  \
    X(STR, smtpd_tls_cert_file, "", NULL) /* "": no STARTTLS */                                    \
    X(STR, smtpd_tls_key_file, "", NULL)                                                           \
    X(STR, smtpd_tls_listen, "", params_check_listen)       /* implicit TLS (port 465 style) */    \
    X(STR, smtpd_sasl_password_file, "", NULL)              /* "": no AUTH */                      \
    X(STR, metrics_listen, "", params_check_metrics_listen) /* "": no metrics endpoint */

#endif
