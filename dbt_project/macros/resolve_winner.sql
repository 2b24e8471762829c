{#- The survivorship window: one place for the order that picks a golden value.

    For each partition (a person's attribute) the candidates are ranked:
      -. placeholders last (`is_placeholder`: config identity.blocklist, e.g. info@...):
         a role mailbox or test address never wins over a real value;
      -. with gold.demote_implausible, implausible values next to last
         (`is_implausible`: over their attribute's length limit or holding control
         characters): a 10,000-character e-mail never wins over a real one;
      0. the attribute's survivorship rule from config (gold.survivorship):
         source_priority -> its source order first; most_frequent -> the value most of
         the person's records hold first; most_recent (default) -> nothing extra;
      1. latest field time (`field_time`);
      2. higher `confidence`;
      3. better source priority (source_priority.csv, 1 = most trusted);
      4. later ingestion (`ingestion_order`: landing date, file, line);
      5. record node id (only to make the order total).
    Returns the candidates with `rule`, `candidate_rank` (1 = the winner) and
    `candidate_records` (the partition's size).
-#}
{% macro resolve_winner(candidates, partition_by=['customer_id', 'attribute'], attribute='attribute') %}
  {%- set rules = c360_setting('survivorship') -%}
  {%- set by_priority = [] -%}
  {%- set by_frequency = [] -%}
  {%- for name, rule in rules.items() -%}
    {%- if rule['rule'] == 'source_priority' -%}{%- do by_priority.append(name) -%}{%- endif -%}
    {%- if rule['rule'] == 'most_frequent' -%}{%- do by_frequency.append(name) -%}{%- endif -%}
  {%- endfor %}
  select
    ranked.*,
    count(*) over (partition by {{ partition_by | join(', ') }}) as candidate_records,
    row_number() over (
      partition by {{ partition_by | join(', ') }}
      order by
        case when is_placeholder then 1 else 0 end,
        {%- if c360_setting('demote_implausible') %}
        case when is_implausible then 1 else 0 end,
        {%- endif %}
        {%- if by_priority %}
        rule_source_rank,
        {%- endif %}
        {%- if by_frequency %}
        rule_frequency desc,
        {%- endif %}
        field_time desc,
        confidence desc,
        source_priority,
        ingestion_order desc,
        record_node_id
    ) as candidate_rank
  from (
    select
      c.*,
      {{ survivorship_rule('c.' ~ attribute) }} as rule
      {%- if by_priority %},
      case
      {%- for name in by_priority %}
        {%- set order = rules[name]['sources'] or [] %}
        when c.{{ attribute }} = '{{ name }}' then
          case c.source_system
          {%- for source in order %}
            when '{{ source }}' then {{ loop.index }}
          {%- endfor %}
            else 100 + c.source_priority end
      {%- endfor %}
        else 0 end as rule_source_rank
      {%- endif %}
      {%- if by_frequency %},
      coalesce(frequency.holders, 0) as rule_frequency
      {%- endif %}
    from {{ candidates }} as c
    {%- if by_frequency %}
    -- How many of the person's records hold each value (most_frequent attributes only).
    left join (
      select {{ partition_by | join(', ') }}, value, count(*) as holders
      from {{ candidates }}
      where {{ attribute }} in ('{{ by_frequency | join("', '") }}')
      group by {{ partition_by | join(', ') }}, value
    ) as frequency
      on {% for column in partition_by %}frequency.{{ column }} = c.{{ column }} and {% endfor -%}
         frequency.value = c.value
    {%- endif %}
  ) as ranked
{%- endmacro %}


{#- The rule name per attribute, for provenance. -#}
{% macro survivorship_rule(attribute) %}
  {%- set rules = c360_setting('survivorship') -%}
  case {{ attribute }}
  {%- for name, rule in rules.items() %}
    when '{{ name }}' then '{{ rule["rule"] }}'
  {%- endfor %}
    else 'most_recent' end
{%- endmacro %}
