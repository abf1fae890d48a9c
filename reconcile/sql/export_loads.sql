-- The file and sheet of each file load, by load number, as variables of the
-- connection that runs export_category.sql (which reads recon_sorted alone).
SET VARIABLE pb_load_files = (SELECT map(coalesce(list(load_no), []::BIGINT[]), coalesce(list(source_file), []::VARCHAR[])) FROM loads);
SET VARIABLE pb_load_sheets = (SELECT map(coalesce(list(load_no), []::BIGINT[]), coalesce(list(source_sheet), []::VARCHAR[])) FROM loads);
