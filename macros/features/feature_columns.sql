{#- The columns of a feature mart as its YAML declares them (dbt's own graph, in order):
    what training_set_5m and latest_features carry over by name. The declaration in
    models/marts/features/_features__models.yml is the one list; the model contracts hold the
    marts to it. At parse time (no graph yet) the list is empty: only refs are read then. -#}
{% macro feature_columns(model_name='features_5m') -%}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ model_name) -%}
        {%- if node is none -%}
            {{ exceptions.raise_compiler_error('feature_columns: no model ' ~ model_name) }}
        {%- endif -%}
        {%- for name in node.columns -%}
            {%- do names.append(name) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(names) }}
{%- endmacro %}
