{#- Where DuckDB and Databricks SQL differ. -#}

{#- Hours from `start` to `end`, fractional. -#}
{% macro c360_hours_between(start, end) %}
  {{ return(adapter.dispatch('c360_hours_between', 'c360')(start, end)) }}
{% endmacro %}
{% macro default__c360_hours_between(start, end) %}
  (epoch({{ end }}) - epoch({{ start }})) / 3600.0
{% endmacro %}
{% macro databricks__c360_hours_between(start, end) %}
  (unix_timestamp({{ end }}) - unix_timestamp({{ start }})) / 3600.0
{% endmacro %}

{#- A string field of a JSON object column. -#}
{% macro c360_json_string(column, key) %}
  {{ return(adapter.dispatch('c360_json_string', 'c360')(column, key)) }}
{% endmacro %}
{% macro default__c360_json_string(column, key) %}
  json_extract_string({{ column }}, '$.{{ key }}')
{% endmacro %}
{% macro databricks__c360_json_string(column, key) %}
  get_json_object({{ column }}, '$.{{ key }}')
{% endmacro %}

{#- Distinct values of a group, sorted, comma-joined; NULL when the group has none
    (Spark's collect_set skips nulls and array_join of an empty array is '', where
    DuckDB's string_agg is NULL: without nullif every absent extensions id was ''). -#}
{% macro c360_distinct_list(column) %}
  {{ return(adapter.dispatch('c360_distinct_list', 'c360')(column)) }}
{% endmacro %}
{% macro default__c360_distinct_list(column) %}
  string_agg(distinct {{ column }}, ',' order by {{ column }})
{% endmacro %}
{% macro databricks__c360_distinct_list(column) %}
  nullif(array_join(array_sort(collect_set({{ column }})), ','), '')
{% endmacro %}

{#- A string -> string map from (key, value expression) pairs; null values left out. -#}
{% macro c360_string_map(pairs) %}
  {{ return(adapter.dispatch('c360_string_map', 'c360')(pairs)) }}
{% endmacro %}
{% macro default__c360_string_map(pairs) %}
  map_from_entries(list_filter([
    {%- for key, value in pairs %}
    {'key': '{{ key }}', 'value': {{ value }}}{{ "," if not loop.last }}
    {%- endfor %}
  ], lambda e: e.value is not null))
{% endmacro %}
{% macro databricks__c360_string_map(pairs) %}
  map_filter(map(
    {%- for key, value in pairs %}
    '{{ key }}', {{ value }}{{ "," if not loop.last }}
    {%- endfor %}
  ), (k, v) -> v is not null)
{% endmacro %}

{#- `column` matches the regular expression `pattern` (RE2 / Java: the simple patterns
    of config identity.blocklist mean the same in both). -#}
{% macro c360_regex_match(column, pattern) %}
  {{ return(adapter.dispatch('c360_regex_match', 'c360')(column, pattern)) }}
{% endmacro %}
{% macro default__c360_regex_match(column, pattern) %}
  regexp_matches({{ column }}, '{{ pattern }}')
{% endmacro %}
{% macro databricks__c360_regex_match(column, pattern) %}
  {{ column }} rlike r'{{ pattern }}'
{% endmacro %}

{#- Whether two names are one spelling a typo apart (case and accents ignored): edit
    distance (DuckDB: Damerau-Levenshtein, a swap counts once) at most 1, or 2 for names
    of 8 characters or more. -#}
{% macro c360_typo_close(a, b) %}
  {{ return(adapter.dispatch('c360_typo_close', 'c360')(a, b)) }}
{% endmacro %}
{% macro default__c360_typo_close(a, b) %}
  (damerau_levenshtein(lower(strip_accents({{ a }})), lower(strip_accents({{ b }})))
   <= case when least(length({{ a }}), length({{ b }})) >= 8 then 2 else 1 end)
{% endmacro %}
{% macro databricks__c360_typo_close(a, b) %}
  (levenshtein(lower({{ a }}), lower({{ b }}))
   <= case when least(length({{ a }}), length({{ b }})) >= 8 then 2 else 1 end)
{% endmacro %}

{#- A timestamp `months` calendar months after `column`. -#}
{% macro c360_add_months(column, months) %}
  {{ return(adapter.dispatch('c360_add_months', 'c360')(column, months)) }}
{% endmacro %}
{% macro default__c360_add_months(column, months) %}
  ({{ column }} + to_months({{ months | int }}))
{% endmacro %}
{% macro databricks__c360_add_months(column, months) %}
  timestampadd(MONTH, {{ months | int }}, {{ column }})
{% endmacro %}

{#- An ISO-8601 text as a UTC timestamp (the type field times have). -#}
{% macro c360_timestamp_literal(text) %}
  {{ return(adapter.dispatch('c360_timestamp_literal', 'c360')(text)) }}
{% endmacro %}
{% macro default__c360_timestamp_literal(text) %}
  cast('{{ text }}' as timestamptz)
{% endmacro %}
{% macro databricks__c360_timestamp_literal(text) %}
  to_timestamp('{{ text }}')
{% endmacro %}

{#- An ISO-8601 UTC timestamp string column (`2026-06-01T09:00:00.000000Z`) as a
    timestamp with time zone; null when it is not one. -#}
{% macro c360_parse_timestamp(column) %}
  {{ return(adapter.dispatch('c360_parse_timestamp', 'c360')(column)) }}
{% endmacro %}
{% macro default__c360_parse_timestamp(column) %}
  try_cast({{ column }} as timestamptz)
{% endmacro %}
{% macro databricks__c360_parse_timestamp(column) %}
  try_to_timestamp({{ column }})
{% endmacro %}
