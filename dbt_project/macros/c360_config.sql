{#- Settings from config/ (c360.yaml, source_priority.csv), passed by c360 as the `c360`
    var (c360_assets/gold/settings.py). Business decisions never live in SQL. -#}
{% macro c360_setting(name) %}
  {%- set settings = var('c360', {}) -%}
  {%- if name not in settings -%}
    {%- if execute -%}
      {{ exceptions.raise_compiler_error(
          "dbt var c360." ~ name ~ " is missing: run gold through c360 (Dagster), or pass "
          ~ "--vars \"$(c360 gold-vars)\" to dbt") }}
    {%- endif -%}
    {{ return({}) }}
  {%- endif -%}
  {{ return(settings[name]) }}
{% endmacro %}


{#- (attribute, gold column, kind) of the golden record's attributes, in order
    (config/canonical_attributes.csv `gold_column`, `kind`): the public schema of
    customer_profile, whose contract (_customer_profile.yml) a test holds to the file. -#}
{% macro profile_attributes() %}
  {{ return(c360_setting('profile_attributes')) }}
{% endmacro %}


{#- Source system -> [key in customer_profile.extensions, record id prefix that is not
    a source id (or none)]: each source module's `profile_key`. -#}
{% macro extension_keys() %}
  {{ return(c360_setting('extension_keys')) }}
{% endmacro %}


{#- (extensions key, column of `relation` holding it) pairs. -#}
{% macro extension_pairs(relation) %}
  {%- set pairs = [] -%}
  {%- for key, skips in extension_keys().values() -%}
    {%- do pairs.append((key, relation ~ '.' ~ key)) -%}
  {%- endfor -%}
  {{ return(pairs) }}
{% endmacro %}


{#- 1 = most trusted (source_priority.csv); unknown sources last. -#}
{% macro source_priority_rank(column) %}
  {%- set priorities = c360_setting('source_priority') -%}
  case {{ column }}
  {%- for source, rank in priorities.items() %}
    when '{{ source }}' then {{ rank | int }}
  {%- endfor %}
    else 999 end
{%- endmacro %}


{#- True where `value` of `attribute` is a placeholder (config identity.blocklist, when
    gold.demote_placeholders): a role mailbox, a noreply/test address, an all-zero phone. -#}
{% macro placeholder_flag(attribute, value) %}
  {%- set patterns = c360_setting('placeholders') -%}
  {%- if not patterns -%}
  false
  {%- else -%}
  case
  {%- for name, regexes in patterns.items() %}
    when {{ attribute }} = '{{ name }}' then (
      {%- for pattern in regexes %}
      {{ c360_regex_match(value, pattern) }}{{ " or" if not loop.last }}
      {%- endfor %}
    )
  {%- endfor %}
    else false end
  {%- endif -%}
{% endmacro %}
